"""pretraining.models: shapes, zero-init, projector structure, the small-image stem, gradients, GlobalBatchNorm."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from torch import nn  # noqa: E402

from dotkernels_ssl.pretraining.config import parse_projector_spec  # noqa: E402
from dotkernels_ssl.pretraining.models import (  # noqa: E402
    ConvNet,
    GlobalBatchNorm,
    Projector,
    SSLModel,
    build_backbone,
    build_projector,
    convert_global_batchnorm,
)


@pytest.mark.parametrize(("name", "dim"), [("resnet18", 512), ("resnet34", 512), ("resnet50", 2048)])
def test_resnet_feature_dims_and_zero_init(name: str, dim: int) -> None:
    torch.manual_seed(0)
    net, feature_dim = build_backbone(name)
    assert feature_dim == dim and isinstance(net.fc, nn.Identity)
    net.eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, dim)
    block_type = type(net.layer1[0]).__name__
    last_bn = "bn2" if block_type == "BasicBlock" else "bn3"
    blocks = [b for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for b in layer]
    for b in blocks:
        assert torch.count_nonzero(getattr(b, last_bn).weight) == 0
        assert torch.all(b.bn1.weight == 1)
    plain, _ = build_backbone(name, zero_init_residual=False)
    assert torch.all(getattr(plain.layer1[0], last_bn).weight == 1)


def _layer4_side(net: nn.Module, side: int) -> int:
    shapes = []
    handle = net.layer4.register_forward_hook(lambda m, i, o: shapes.append(o.shape))
    with torch.no_grad():
        net.eval()(torch.randn(1, net.conv1.in_channels, side, side))
    handle.remove()
    return shapes[0][-1]


def test_small_image_stem_changes_resolution() -> None:
    standard, _ = build_backbone("resnet18")
    small, _ = build_backbone("resnet18", small_image_stem=True)
    # 32 px: the standard stem divides by 4 before layer1 and the stages by 8 more -> 1x1;
    # the CIFAR stem only by 8 -> 4x4
    assert _layer4_side(standard, 32) == 1
    assert _layer4_side(small, 32) == 4
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert isinstance(small.maxpool, nn.Identity)
    assert standard.conv1.kernel_size == (7, 7) and isinstance(standard.maxpool, nn.MaxPool2d)


def test_in_channels() -> None:
    for stem in (False, True):
        net, dim = build_backbone("resnet18", small_image_stem=stem, in_channels=1)
        assert net.conv1.in_channels == 1
        with torch.no_grad():
            assert net.eval()(torch.randn(2, 1, 28, 28)).shape == (2, dim)


def test_convnet() -> None:
    net, dim = build_backbone("convnet", in_channels=1)
    assert isinstance(net, ConvNet) and dim == 256
    x = torch.randn(3, 1, 28, 28)
    assert net(x).shape == (3, 256)
    widths = (64, 128, 256, 256)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == list(widths)
    expected_params = sum(a * b * 9 + 2 * b for a, b in zip((1, *widths[:-1]), widths))  # conv + BN affine
    assert sum(p.numel() for p in net.parameters()) == expected_params
    assert ConvNet(3, widths=(8, 16))(torch.randn(2, 3, 32, 32)).shape == (2, 16)


@pytest.mark.parametrize(("size", "widths", "side"), [(28, (4, 8, 8, 16), 3), (32, (4, 8, 8, 16), 4), (28, (4, 8), 14)])
def test_convnet_flatten(size, widths, side) -> None:
    torch.manual_seed(0)
    flat = ConvNet(1, widths=widths, pool="flatten", image_size=size)
    assert flat.out_dim == widths[-1] * side * side
    avg = ConvNet(1, widths=widths)
    # same parameters and buffers: checkpoints of either kind share their keys
    assert flat.state_dict().keys() == avg.state_dict().keys()
    avg.load_state_dict(flat.state_dict())
    x = torch.randn(3, 1, size, size)
    out = flat(x)
    assert out.shape == (3, flat.out_dim)
    fmap = flat.features(x)
    torch.testing.assert_close(out, fmap.reshape(3, -1), rtol=0, atol=0)
    torch.testing.assert_close(avg(x), fmap.mean(dim=(2, 3)), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="flattens"):
        flat(torch.randn(2, 1, size + 4, size + 4))


@pytest.mark.parametrize("pool", ["avg", "flatten"])
def test_convnet_channels_last_is_exact_in_float64(pool) -> None:
    """The memory format changes only the rounding: outputs and gradients agree to float64 precision."""
    torch.manual_seed(0)
    net = ConvNet(1, widths=(4, 8, 8, 16), pool=pool, image_size=28).double()
    net_cl = ConvNet(1, widths=(4, 8, 8, 16), pool=pool, image_size=28).double()
    net_cl.load_state_dict(net.state_dict())
    net_cl = net_cl.to(memory_format=torch.channels_last)
    x = torch.randn(6, 1, 28, 28, dtype=torch.float64)
    out = net(x)
    out_cl = net_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out_cl, out, rtol=1e-12, atol=1e-12)
    out.square().sum().backward()
    out_cl.square().sum().backward()
    for (name, p), p_cl in zip(net.named_parameters(), net_cl.parameters()):
        torch.testing.assert_close(p_cl.grad, p.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_convnet_bad_arguments() -> None:
    with pytest.raises(ValueError, match="pool"):
        ConvNet(1, pool="max")
    with pytest.raises(ValueError, match="image_size"):
        ConvNet(1, pool="flatten")
    with pytest.raises(ValueError, match="image_size"):
        ConvNet(1, widths=(4, 4, 4, 4), pool="flatten", image_size=4)


def test_projector_structure() -> None:
    proj = build_projector(512, "1024-2048-256")
    assert isinstance(proj, Projector) and (proj.in_dim, proj.out_dim) == (512, 256)
    kinds = [type(m) for m in proj]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    linears = [m for m in proj if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 1024), (1024, 2048), (2048, 256)]
    assert linears[0].bias is not None and linears[1].bias is not None and linears[2].bias is None
    assert [m.num_features for m in proj if isinstance(m, nn.BatchNorm1d)] == [1024, 2048]
    single = build_projector(16, "8")
    assert [type(m) for m in single] == [nn.Linear] and single[0].bias is None
    none = build_projector(16, "")
    assert len(none) == 0 and none.out_dim == 16
    x = torch.randn(4, 16)
    assert torch.equal(none(x), x)
    assert parse_projector_spec([3, 4]) == [3, 4]
    with pytest.raises(ValueError, match="spec"):
        parse_projector_spec("8192x8192")
    with pytest.raises(ValueError, match="positive"):
        parse_projector_spec("8-0")
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("vgg11")


def test_ssl_model_forward_and_gradients() -> None:
    torch.manual_seed(0)
    backbone, dim = build_backbone("resnet18", small_image_stem=True)
    model = SSLModel(backbone, build_projector(dim, "32-16"))
    assert model.embedding_dim == 16
    x = torch.randn(4, 3, 16, 16)
    features, embeddings = model(x)
    assert features.shape == (4, 512) and embeddings.shape == (4, 16)
    embeddings.square().sum().backward()
    # zero-init residual blocks: the stem, the zero gammas and the projector get gradients at the start
    assert backbone.conv1.weight.grad.abs().sum() > 0
    assert backbone.layer1[0].bn2.weight.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.projector.parameters())
    small = SSLModel(ConvNet(1), build_projector(256, "64-32"))
    small(torch.randn(5, 1, 28, 28))[1].sum().backward()
    assert all(p.grad is not None for p in small.parameters())


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape", [(16, 5), (8, 3, 4, 4), (4, 2, 3, 3, 3)])
def test_global_batchnorm_is_batchnorm_in_one_process(shape, momentum):
    """Outside a process group GlobalBatchNorm equals torch's BatchNorm: outputs, gradients, running statistics."""
    torch.manual_seed(0)
    ref = {2: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[len(shape)](shape[1], momentum=momentum)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-0.5, 0.5)
    bn = GlobalBatchNorm(shape[1], momentum=momentum)
    bn.load_state_dict(ref.state_dict())  # the same parameter and buffer names
    for _ in range(3):
        x = torch.randn(*shape, dtype=torch.float64) * 2 + 1
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        y_ref, y = ref.double()(x1), bn.double()(x2)
        torch.testing.assert_close(y, y_ref)
        (y_ref * torch.arange(y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
        (y * torch.arange(y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
        torch.testing.assert_close(x2.grad, x1.grad)
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)
    assert int(bn.num_batches_tracked) == int(ref.num_batches_tracked) == 3
    ref.eval(), bn.eval()
    x = torch.randn(*shape, dtype=torch.float64)
    torch.testing.assert_close(bn(x), ref(x))


def test_convert_global_batchnorm_keeps_parameters_and_skips_sync_batchnorm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(3), nn.BatchNorm1d(3))
    model(torch.randn(4, 1, 6, 6))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    converted = convert_global_batchnorm(model)
    assert isinstance(converted[1], GlobalBatchNorm) and isinstance(converted[4], GlobalBatchNorm)
    for k, v in converted.state_dict().items():
        torch.testing.assert_close(v, state[k])
    sync = nn.SyncBatchNorm(4)
    assert convert_global_batchnorm(sync) is sync
