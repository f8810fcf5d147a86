import numpy as np
import pytest
import torch

from realfake.gap import frechet_distance, mmd_rbf, pca_plot


def test_mmd_hand_computed_on_two_points():
    # x = {0, 0}, y = {1, 1} in 1-D, bandwidth 1: k(0,1) = exp(-1/2); within-set kernels are 1
    x, y = torch.zeros(2, 1), torch.ones(2, 1)
    assert mmd_rbf(x, y, bandwidth=1.0) == pytest.approx(1 + 1 - 2 * np.exp(-0.5))


def test_mmd_grows_with_the_shift():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 8, generator=g)
    same = torch.randn(300, 8, generator=g)
    near, far = same + 0.3, same + 1.5
    values = [mmd_rbf(real, s) for s in (same, near, far)]
    assert abs(values[0]) < 0.01 and values[0] < values[1] < values[2]


def test_frechet_matches_the_gaussian_formula():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(20000, 1, generator=g)
    y = 3 + 2 * torch.randn(20000, 1, generator=g)
    # 1-D: (mu_x - mu_y)^2 + (s_x - s_y)^2 = 9 + 1
    assert frechet_distance(x, y) == pytest.approx(10.0, rel=0.05)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_pca_plot_draws_every_set_on_the_first_sets_components(tmp_path):
    from PIL import Image

    sets = {"real": torch.randn(50, 6), "baseline": torch.randn(40, 6) + 2, "ours": torch.randn(40, 6) + 1}
    pca_plot(sets, tmp_path / "pca.png", "test")
    assert Image.open(tmp_path / "pca.png").size[0] > 300
