"""pytest --nbmake notebooks: run the notebooks in their fast mode unless DOTKERNELS_FAST says otherwise."""

import os

os.environ.setdefault("DOTKERNELS_FAST", "1")
