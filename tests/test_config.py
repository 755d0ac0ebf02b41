"""dotkernels_ssl.pretraining.config: presets, YAML files, command-line overrides, validation (no training here)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

from dotkernels_ssl.pretraining.config import (  # noqa: E402
    FLAT_ALIASES,
    FLAT_SWITCHES,
    HELP,
    METHOD_DEFAULTS,
    METHODS,
    PRESETS,
    SECTIONS,
    Config,
    ConfigError,
    build_config,
    config_from_dict,
    config_to_dict,
    load_yaml,
    parse_config,
    save_yaml,
)


def test_default_is_the_cpu_preset():
    cfg = parse_config([])
    assert cfg.preset == "fashion-mnist-cpu"
    assert cfg.data.dataset == "fashion-mnist"
    assert cfg.model.backbone == "convnet"
    assert cfg.loss.method == "sfrik"
    assert cfg.optim.optimizer == "lars"
    assert cfg.data.recipe == "small"
    assert cfg.out_dir.name == "fashion-mnist-sfrik"


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("method", ["sfrik", "auh", "vicreg", "barlow", "simclr"])
def test_every_preset_and_method_builds(preset, method):
    cfg = build_config(preset, {"loss.method": method})
    assert cfg.preset == preset and cfg.loss.method == method
    assert cfg.loss.preset == METHOD_DEFAULTS[preset][method]["loss.preset"] and cfg.loss.options == {}
    torch = pytest.importorskip("torch")
    from dotkernels_ssl.losses import PRESETS as LOSS_PRESETS

    assert cfg.loss.preset in LOSS_PRESETS[method]  # every run preset names a stored loss preset
    del torch


def test_paper_recipes():
    r18 = build_config("imagenet20-resnet18")
    assert r18.model.backbone == "resnet18" and r18.model.projector == "8192-8192-8192"
    assert r18.optim.optimizer == "lars" and r18.optim.base_lr == 1.2 and r18.optim.warmup_epochs == 10
    assert r18.optim.batch_size == 2048 and r18.optim.epochs == 100 and r18.optim.weight_decay == 1e-6
    assert r18.optim.final_lr_ratio == 0.001 and r18.optim.eta == 0.001 and r18.optim.momentum == 0.9
    assert r18.loss.preset == "resnet18" and r18.loss.options == {}
    assert r18.data.recipe == "vicreg" and r18.data.dataset == "imagenet20"
    r50 = build_config("imagenet-resnet50")
    assert r50.model.backbone == "resnet50" and r50.model.projector == "8192-8192-32768"
    assert r50.optim.base_lr == 0.4 and r50.loss.preset == "resnet50"
    vic = build_config("imagenet-resnet50", {"loss.method": "vicreg"})
    assert vic.model.projector == "8192-8192-8192"
    assert vic.loss.preset == "resnet50"
    auh = build_config("imagenet20-resnet18", {"loss.method": "auh"})
    assert auh.loss.preset == "resnet18"
    cifar = build_config("cifar10-resnet18")
    assert cifar.model.small_image_stem and cifar.data.recipe == "small"
    stl = build_config("stl10-resnet18")
    assert stl.data.train_split == "train+unlabeled" and stl.data.recipe == "auh" and stl.data.crop_size == 64


def test_flat_and_dotted_overrides_with_types():
    cfg = parse_config(
        [
            "--method",
            "vicreg",
            "--epochs",
            "3",
            "--batch-size=64",
            "--lr",
            "0.05",
            "--optim.warmup_epochs",
            "0.5",
            "--model.convnet_widths",
            "8,16,16,16",
            "--data.crop_scale",
            "0.3,1",
            "--data.limit",
            "none",
            "--loss.options.invariance_weight",
            "12.5",
            "--eval.knn_k",
            "5,7",
            "--quiet",
            "--channels-last",
            "--run.tensorboard",
            "false",
        ]
    )
    assert cfg.loss.method == "vicreg" and cfg.optim.epochs == 3 and cfg.optim.batch_size == 64
    assert cfg.optim.base_lr == 0.05 and cfg.optim.warmup_epochs == 0.5
    assert cfg.model.convnet_widths == (8, 16, 16, 16)
    assert cfg.data.crop_scale == (0.3, 1.0) and cfg.data.limit is None
    assert cfg.loss.preset == "fashion-mnist" and cfg.loss.options == {"invariance_weight": 12.5}
    assert cfg.eval.knn_k == (5, 7)
    assert cfg.run.quiet and cfg.run.channels_last and not cfg.run.tensorboard
    assert all("." in v for v in FLAT_ALIASES.values())


def test_yaml_file_then_command_line(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text(
        "preset: cifar10-resnet18\n"
        "loss:\n  method: simclr\n  options:\n    temperature: 0.3\n"
        "optim:\n  epochs: 7\n  base_lr: 0.9\n"
        "data.limit: 100\n"
    )
    cfg = parse_config(["--config", str(f), "--lr", "0.1"])
    assert cfg.preset == "cifar10-resnet18" and cfg.model.backbone == "resnet18"
    assert cfg.loss.method == "simclr" and cfg.loss.options == {"temperature": 0.3}
    assert cfg.optim.epochs == 7 and cfg.optim.base_lr == 0.1 and cfg.data.limit == 100
    # an explicit --preset on the command line wins over the default, the file's preset over --preset
    assert parse_config(["--preset", "stl10-resnet18"]).data.dataset == "stl10"


def test_round_trip_dict_and_yaml(tmp_path):
    cfg = parse_config(["--method", "kernel", "--kernel", "gaussian:gamma=2.5", "--data.crop_scale", "0.2,1"])
    d = config_to_dict(cfg)
    assert config_from_dict(d) == cfg
    save_yaml(cfg, tmp_path / "c.yaml")
    assert config_from_dict(load_yaml(tmp_path / "c.yaml")) == cfg
    assert not list(tmp_path.glob("*.tmp-*"))


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--method", "byol"], "unknown method 'byol'"),
        (["--kernel", "gaussian:gamma=-1"], "bad kernel"),
        (["--kernel", "nosuchkernel"], "unknown kernel"),
        (["--method", "vicreg", "--kernel", "gaussian"], "kernel methods"),
        (["--method", "kernel"], "needs a kernel"),
        (["--optim.nosuch", "1"], "unknown configuration key"),
        (["--nosuch", "1"], "unknown option --nosuch"),
        (["--epochs", "two"], "bad value for optim.epochs"),
        (["--run.quiet", "maybe"], "bad value for run.quiet"),
        (["--preset", "nosuch"], "unknown preset"),
        (["--optimizer", "adam9"], "unknown optimizer"),
        (["--amp", "fp8"], "run.amp"),
        (["--backbone", "vgg"], "unknown backbone"),
        (["--recipe", "fancy"], "unknown augmentation recipe"),
        (["--dataset", "nosuch"], "unknown data set"),
        (["--projector", "12-x"], "projector spec"),
        (["--data.val_fraction", "0"], "validation split"),
        (["--data.local_crops", "2"], "convnet_pool"),
        (["--model.convnet_pool", "max"], "convnet_pool"),
        (["--epochs"], "needs a value"),
        (["positional"], "unexpected argument"),
        (["--workers", "-3"], "must be >= 0"),
        (["--threads", "0"], "must be >= 1"),
        (["--device", "tpu"], "choose auto, cpu, cuda or cuda:N"),
        (["--device", "cuda:x"], "choose auto, cpu, cuda or cuda:N"),
        (["--run.checkpoint_minutes", "-2"], "checkpoint_minutes"),
    ],
)
def test_bad_inputs_raise_config_error(argv, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(argv)


def test_hydra_style_overrides():
    cfg = parse_config(["optim.base_lr=0.25", "--epochs", "3", "model.convnet_widths=4,8,8,8", "loss.options.x=2"])
    assert cfg.optim.base_lr == 0.25 and cfg.optim.epochs == 3 and cfg.model.convnet_widths == (4, 8, 8, 8)
    assert cfg.loss.options == {"x": 2}
    with pytest.raises(ConfigError, match=r"unknown configuration key 'optim\.nosuch'"):
        parse_config(["optim.nosuch=1"])


def test_kernel_strings_accepted():
    for spec in ("gaussian:gamma=2.5", "sfrik:1,40,40", "heat:time=0.01", "sfrik"):
        assert parse_config(["--kernel", spec]).loss.kernel == spec
    assert set(METHODS) >= {"sfrik", "auh", "vicreg", "barlow", "simclr"}


def test_existing_run_folder_is_the_starting_point(tmp_path):
    cfg = parse_config(["--method", "barlow", "--epochs", "3", "--out", str(tmp_path)])
    save_yaml(cfg, tmp_path / "config.yaml")
    again = parse_config(["--out", str(tmp_path), "--epochs", "5"])
    assert again.loss.method == "barlow" and again.optim.epochs == 5
    with pytest.raises(ConfigError, match="cannot be resumed"):
        parse_config(["--out", str(tmp_path), "--method", "simclr"])


def _help(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        parse_config([*argv, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


def _value(text, flag):
    """The value shown on the line of ``flag`` (the column after the flag)."""
    line = next(line for line in text.splitlines() if line.startswith(f"  {flag} "))
    return line.split()[1]


def test_help_shows_what_a_run_uses(capsys):
    """--help shows the chosen preset's values (not the dataclass defaults), one line per option."""
    text = _help(capsys)
    assert "--optim.base_lr" in text and "fashion-mnist-cpu" in text and "(the default;" in text
    default = build_config("fashion-mnist-cpu")
    assert _value(text, "--epochs") == str(default.optim.epochs) == "40"  # the dataclass default is 100
    assert _value(text, "--projector") == default.model.projector == "1024-1024-1024"
    assert _value(text, "--model.projector") == "1024-1024-1024"
    assert _value(text, "--lr") == str(default.optim.base_lr)
    assert _value(text, "--eval.logreg_cs") == ",".join(str(c) for c in default.eval.logreg_cs)
    cifar = _help(capsys, "--preset", "cifar10-resnet18", "--method", "vicreg")
    assert "preset cifar10-resnet18 with method vicreg" in cifar and "(the default;" not in cifar
    assert _value(cifar, "--epochs") == "400" and _value(cifar, "--backbone") == "resnet18"
    assert _value(cifar, "--projector") == "8192-8192-8192" and _value(cifar, "--method") == "vicreg"
    assert _value(_help(capsys, "--epochs", "3"), "--epochs") == "3"
    # every option has a line with a description
    for key in [f"{sec}.{f}" for sec, cls in SECTIONS.items() for f in cls.__dataclass_fields__]:
        line = next(line for line in text.splitlines() if line.startswith(f"  --{key} "))
        assert HELP[key] in line, key
    for flag in (*FLAT_ALIASES, *FLAT_SWITCHES):
        line = next(line for line in text.splitlines() if line.startswith(f"  --{flag} "))
        assert len(line.split()) >= 3, flag
    assert set(HELP) == {f"{sec}.{f}" for sec, cls in SECTIONS.items() for f in cls.__dataclass_fields__}


def test_help_of_a_bad_command_is_the_error(capsys):
    with pytest.raises(ConfigError, match="unknown preset"):
        parse_config(["--preset", "nosuch", "--help"])


def test_validate_is_chainable():
    assert isinstance(Config().validate(), Config)


@pytest.mark.parametrize("method", ["sfrik", "auh", "vicreg", "barlow", "simclr"])
def test_losses_build_from_the_config(method):
    torch = pytest.importorskip("torch")
    from dotkernels_ssl.pretraining.loop import build_loss_from_config

    cfg = parse_config(["--method", method])
    loss = build_loss_from_config(cfg)
    z1, z2 = torch.randn(16, 8), torch.randn(16, 8)
    res = loss.forward_terms(z1, z2)
    assert torch.isfinite(res.loss) and len(res.terms) >= 1


def test_bad_loss_option_is_a_config_error():
    from dotkernels_ssl.pretraining.loop import build_loss_from_config

    cfg = parse_config(["--method", "simclr", "--loss.options.nosuch", "1"])
    with pytest.raises(ConfigError, match="cannot build the 'simclr' loss"):
        build_loss_from_config(cfg)


def test_help_does_not_load_torch():
    """--help of a non-default preset answers without torch (the configuration layer is OmegaConf and YAML)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from dotkernels_ssl.pretraining.cli import pretrain_main\n"
        "try:\n    pretrain_main(['--preset', 'cifar10-resnet18', '--help'])\n"
        "except SystemExit:\n    pass\n"
        "print('LOADED', 'torch' in sys.modules, 'omegaconf' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "--optim.base_lr" in r.stdout and r.stdout.strip().splitlines()[-1] == "LOADED False True"


@pytest.mark.parametrize("command", ["pretrain_main", "eval_main"])
def test_help_into_a_closed_pipe_is_quiet(command):
    """`dotkernels-pretrain --help | head -1`: the reader closes the pipe early; no traceback, exit status 0."""
    import subprocess
    import sys

    code = f"import sys\nfrom dotkernels_ssl.pretraining.cli import {command}\nsys.exit({command}(['--help']))\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # closed before the child writes its help
    _, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err, err.decode()
    assert proc.returncode == 0
