import pytest
import torch

from realfake.conditioning import build_prompt, inject_guidance, match_negative
from realfake.diffusion import diffusion_losses


def test_mmd_term_matches_hand_computation():
    # two samples, one latent element each: residuals 1 and 3
    r = torch.tensor([[1.0], [3.0]])
    l_simple, l_mmd = diffusion_losses(r)
    assert l_simple.item() == pytest.approx((1 + 9) / 2)  # mean of squares
    assert l_mmd.item() == pytest.approx(((1 + 3) / 2) ** 2)  # square of the batch mean


def test_mmd_is_mean_over_elements_of_squared_batch_mean():
    r = torch.randn(4, 2, 3, 3)
    _, l_mmd = diffusion_losses(r)
    hand = sum(float(r[:, c, i, j].mean()) ** 2 for c in range(2) for i in range(3) for j in range(3)) / 18
    assert l_mmd.item() == pytest.approx(hand, rel=1e-5)


def test_mmd_bounded_by_simple_loss_jensen():
    for _ in range(5):
        r = torch.randn(8, 4, 4, 4) + torch.randn(1, 4, 4, 4)
        l_simple, l_mmd = diffusion_losses(r)
        assert l_mmd <= l_simple
        w = torch.rand(8)
        l_simple, l_mmd = diffusion_losses(r, w)
        assert l_mmd <= l_simple + 1e-6


def test_identical_residuals_make_mmd_equal_simple_loss():
    r = torch.randn(1, 4, 2, 2).expand(6, -1, -1, -1)
    l_simple, l_mmd = diffusion_losses(r)
    assert l_mmd.item() == pytest.approx(l_simple.item(), rel=1e-5)


def test_snr_weights_scale_simple_loss():
    r = torch.tensor([[2.0], [2.0]])
    l_simple, l_mmd = diffusion_losses(r, torch.tensor([1.0, 0.0]))
    assert l_simple.item() == pytest.approx(2.0)  # (4*1 + 4*0) / 2
    assert l_mmd.item() == pytest.approx(1.0)  # ((2*1 + 2*0) / 2) ** 2


def test_replace_last_overwrites_only_the_final_state():
    states, guide = torch.randn(3, 77, 16), torch.randn(3, 16)
    out = inject_guidance(states, guide, "replace_last")
    assert out.shape == (3, 77, 16)
    assert torch.equal(out[:, :76], states[:, :76])
    assert torch.equal(out[:, 76], guide)


def test_append_adds_a_78th_state_and_negative_matches():
    states, guide = torch.randn(2, 77, 16), torch.randn(2, 16)
    out = inject_guidance(states, guide, "append")
    assert out.shape == (2, 78, 16) and torch.equal(out[:, 77], guide)
    neg = match_negative(torch.randn(1, 77, 16), "append")
    assert neg.shape == (1, 78, 16) and torch.equal(neg[:, 77], neg[:, 76])


def test_guidance_width_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="width 8 differs"):
        inject_guidance(torch.randn(1, 77, 16), torch.randn(1, 8))


def test_no_guidance_leaves_states_unchanged():
    states = torch.randn(1, 77, 4)
    assert inject_guidance(states, None) is states


def test_prompt_template_with_and_without_caption():
    assert build_prompt("photo of {classname}", "tench", "a man holding a fish") == \
        "photo of tench, a man holding a fish"
    assert build_prompt("photo of {classname}", "tench", None, ", best quality") == "photo of tench, best quality"


def _hand_mmd(r, w, group, form):
    """Independent loop: per group, per latent element, then averaged over groups."""
    import numpy as np

    r, w = r.double().numpy().reshape(len(r), -1), w.double().numpy()
    terms = []
    for start in range(0, len(r), group):
        rg, wg = r[start:start + group], w[start:start + group]
        if form == "paper":
            terms.append(np.mean([np.mean(np.sqrt(wg) * rg[:, e]) ** 2 for e in range(r.shape[1])]))
        else:
            terms.append(sum(np.sum(wg * rg[:, e]) ** 2 for e in range(r.shape[1])) / r.shape[1])
    return float(np.mean(terms))


@pytest.mark.parametrize("form", ["paper", "released"])
def test_grouped_mmd_forms_match_hand_computation(form):
    r, w = torch.randn(16, 4, 3, 3, dtype=torch.float64), torch.rand(16, dtype=torch.float64) * 5
    l_simple, l_mmd = diffusion_losses(r, w, group_size=8, form=form)
    assert l_mmd.item() == pytest.approx(_hand_mmd(r, w, 8, form), rel=1e-9)
    assert l_simple.item() == pytest.approx(float((r.pow(2).mean(dim=(1, 2, 3)) * w).mean()), rel=1e-9)


def test_released_mmd_is_the_released_codes_expression():
    """0.003 * F.mse_loss(sum_i w_i eps_theta_i, sum_i w_i eps_i) over one GPU's batch of 8."""
    eps, eps_theta, w = torch.randn(8, 4, 8, 8), torch.randn(8, 4, 8, 8), torch.rand(8)
    shape = (-1, 1, 1, 1)
    released = torch.nn.functional.mse_loss((w.view(shape) * eps_theta).sum(0), (w.view(shape) * eps).sum(0))
    _, l_mmd = diffusion_losses(eps - eps_theta, w, group_size=8, form="released")
    assert l_mmd.item() == pytest.approx(released.item(), rel=1e-5)


def test_grouped_mmd_does_not_depend_on_batch_size():
    """Groups of 8: a step of 64 and eight steps of 8 see the same term (8x a batch-64 MMD)."""
    r = torch.randn(64, 4, 4, 4)
    _, grouped = diffusion_losses(r, group_size=8)
    per_step = torch.stack([diffusion_losses(chunk, group_size=8)[1] for chunk in r.split(8)]).mean()
    assert grouped.item() == pytest.approx(per_step.item(), rel=1e-5)
    _, whole = diffusion_losses(r)
    assert 4 < grouped.item() / whole.item() < 16  # E||mean r||^2 falls as 1/N
