"""Text + visual-guidance conditioning (Sec. 3.2): prompts, text states, guidance injection."""

from __future__ import annotations

import torch

INJECTION_MODES = ("replace_last", "append")


def build_prompt(template: str, class_name: str, caption: str | None = None, suffix: str = "") -> str:
    """``photo of {classname}`` plus ``, {caption}`` when captions are used, plus ``suffix``."""
    prompt = template.format(classname=class_name)
    if caption:
        prompt += f", {caption}"
    return prompt + suffix


@torch.no_grad()
def encode_text(tokenizer, text_encoder, prompts: list[str]) -> torch.Tensor:
    """The text encoder's last hidden states for padded prompts, [batch, 77, width], as SD uses."""
    tokens = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    device = next(text_encoder.parameters()).device
    return text_encoder(tokens.input_ids.to(device))[0]


def inject_guidance(text_states: torch.Tensor, guidance: torch.Tensor | None,
                    mode: str = "replace_last") -> torch.Tensor:
    """Add one visual-guidance token per sample to the text states.

    ``replace_last`` overwrites the last of the 77 states (a padding position), as the
    authors' released code does, keeping SD's sequence length; ``append`` adds a 78th.
    """
    if guidance is None:
        return text_states
    if mode not in INJECTION_MODES:
        raise ValueError(f"guidance injection must be one of {INJECTION_MODES}, got {mode!r}")
    if guidance.shape[-1] != text_states.shape[-1]:
        raise ValueError(f"visual guidance width {guidance.shape[-1]} differs from the text encoder's "
                         f"{text_states.shape[-1]}: the CLIP image projection must match SD's text width")
    token = guidance.to(text_states.device, text_states.dtype).unsqueeze(1)
    if mode == "append":
        return torch.cat([text_states, token], dim=1)
    return torch.cat([text_states[:, :-1], token], dim=1)


def match_negative(negative_states: torch.Tensor, mode: str) -> torch.Tensor:
    """Give the negative prompt the same length as guided prompts (classifier-free guidance
    concatenates both): in ``append`` mode its last padding state is repeated, which adds
    nothing but one more padding position; ``replace_last`` keeps it as it is."""
    if mode == "append":
        return torch.cat([negative_states, negative_states[:, -1:]], dim=1)
    return negative_states
