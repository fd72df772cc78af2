"""Run a synthesis network one stage at a time, so a renderer can keep intermediate activations.

A stage is one step of the network's own forward pass, called with the same modules and the same
arguments, so running all stages reproduces `G.synthesis(ws)` exactly. Every stage reads a prefix
of the ws only (`ws_end`): the state after stage i depends on ws[:, :ws_end[i]] (plus the input
transform and noise mode) and nothing else. A change to ws[:, k:] therefore leaves every state
with ws_end <= k valid.

- StyleGAN3: stage 0 is the Fourier-feature input (ws[:, 0]); stage j >= 1 is layer j - 1
  (ws[:, j]); `finish` applies the output scale.
- StyleGAN2: one stage per resolution block; a block reads an overlapping window of ws
  (its convolutions plus its toRGB, which shares a w with the next block's first convolution)
  and carries (x, img). The input transform goes to the first block (its learned constant).
"""

from __future__ import annotations

import torch

State = tuple[torch.Tensor | None, ...]


class SynthesisStages:
    def __init__(self, synthesis: torch.nn.Module):
        self.synthesis = synthesis
        if hasattr(synthesis, "layer_names") and hasattr(synthesis, "input"):
            self.arch = "stylegan3"
            self.ws_end = list(range(1, len(synthesis.layer_names) + 2))
        elif hasattr(synthesis, "block_resolutions"):
            self.arch = "stylegan2"
            self._windows = []  # (first w, count) per block, as the network slices them
            w_idx = 0
            for res in synthesis.block_resolutions:
                block = getattr(synthesis, f"b{res}")
                self._windows.append((w_idx, block.num_conv + block.num_torgb))
                w_idx += block.num_conv
            self.ws_end = [start + count for start, count in self._windows]
        else:
            raise TypeError(f"unsupported synthesis network {type(synthesis).__name__}")

    @property
    def num_stages(self) -> int:
        return len(self.ws_end)

    def run_stage(
        self,
        index: int,
        state: State | None,
        ws: torch.Tensor,
        input_transform: torch.Tensor | None = None,
        **layer_kwargs,
    ) -> State:
        """Stage `index` on the state after stage index - 1 (None for the first stage).

        The state passed in may be modified in place (StyleGAN2 accumulates img in place);
        pass a copy to keep it."""
        syn = self.synthesis
        ws = ws.to(torch.float32)
        if self.arch == "stylegan3":
            if index == 0:
                return (syn.input(ws[:, 0], transform=input_transform),)
            layer = getattr(syn, syn.layer_names[index - 1])
            return (layer(state[0], ws[:, index], **layer_kwargs),)
        x, img = state if state is not None else (None, None)
        start, count = self._windows[index]
        block = getattr(syn, f"b{syn.block_resolutions[index]}")
        if index == 0:  # the block with the constant input, which the transform resamples
            layer_kwargs = dict(layer_kwargs, input_transform=input_transform)
        return tuple(block(x, img, ws.narrow(1, start, count), **layer_kwargs))

    def finish(self, state: State) -> torch.Tensor:
        """The network's output image [N, C, H, W] from the state after the last stage."""
        if self.arch == "stylegan3":
            x = state[0]
            if self.synthesis.output_scale != 1:
                x = x * self.synthesis.output_scale
            return x.to(torch.float32)
        return state[1]

    def run(
        self, ws: torch.Tensor, input_transform: torch.Tensor | None = None, **layer_kwargs
    ) -> torch.Tensor:
        """All stages in a row: the same result as the network's forward."""
        state = None
        for index in range(self.num_stages):
            state = self.run_stage(index, state, ws, input_transform, **layer_kwargs)
        return self.finish(state)
