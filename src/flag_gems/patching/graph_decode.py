"""Greedy decode of a Hugging Face causal LM from one captured CUDA graph per decoder.

    decoder = flag_gems.GraphDecoder(model, batch_size=1, max_length=512)
    tokens = decoder.generate(input_ids, max_new_tokens=64)   # same tokens as generate(do_sample=False)
    tokens = flag_gems.generate_with_graphs(model, input_ids, max_new_tokens=64)  # one-off

A decoder owns a transformers ``StaticCache`` of ``batch_size`` x ``max_length`` positions and
a few static device buffers: the current token of each row, its position id, the cache
position, which cache columns each row may attend to, the logits of the step and the token
sequence. ``generate`` runs the prompt (prefill) eagerly, then each new token is one *step*:
the one-token forward of the model over the static cache, with a 4-D additive attention mask
made from the static buffers (``column <= cache position`` and not padding), the greedy
argmax, and the bookkeeping for the next step (the token fed back, positions advanced, the
token written into the sequence) — all on the device, so a step reads nothing from the host.

On CUDA, the first ``warmup_steps`` steps of the first ``generate`` run eagerly on a side
stream (compiling and tuning our kernels, making their launch plans, cuBLAS workspaces), then
one step is captured with ``torch.cuda.graph`` and every later step of this and later calls
is ``graph.replay()``: the launches of our kernels (or native ones) with no Python, no
dispatcher and no allocation. What runs is what was active at capture: a decoder captured
under ``flag_gems.enable()`` replays our kernels after ``disable()`` too; make another
decoder to compare. Works with or without ``enable()`` and ``patch_model``.

Without CUDA (or with ``graphs=False``) the very same step runs eagerly each time, so the
static-cache logic is tested on the CPU; only capture and replay need a GPU.

Limits: greedy only; the prompt batch must be ``batch_size`` rows (left padding through
``attention_mask`` is supported); ``sdpa`` or ``eager`` attention (a 4-D mask is passed);
an EOS does not stop the device early: every step runs and the tokens after a row's EOS
become the pad id afterwards, as ``generate`` returns them (cut where every row has ended).
"""

import inspect

import torch

__all__ = ["GraphDecoder", "generate_with_graphs"]

_ATTENTION = ("sdpa", "eager")


def _cache_argument(model):
    """The forward's name for the cache: ``cache`` (transformers >= 5.2x) or ``past_key_values``;
    read from the class (patch_model's forward on the instance takes ``**kwargs``)."""
    parameters = inspect.signature(type(model).forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _round_up(value, multiple):
    return -(-value // multiple) * multiple


def _token_ids(value):
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else (int(value),)


class GraphDecoder:
    """Greedy decode of ``model`` (a transformers causal LM) for ``batch_size`` rows of up to
    ``max_length`` tokens (prompt and new tokens), each step replaying one captured CUDA
    graph (see the module's docstring). ``graphs``: None captures where the model is on
    CUDA, False always runs the step eagerly, True requires CUDA."""

    def __init__(self, model, batch_size, max_length, *, graphs=None, warmup_steps=3):
        from transformers import StaticCache

        config = model.config
        attention = getattr(config, "_attn_implementation", None) or "eager"
        if attention not in _ATTENTION:
            raise ValueError(f"GraphDecoder takes sdpa or eager attention, not {attention!r}")
        embeddings = model.get_input_embeddings().weight
        self.model, self.batch_size, self.max_length = model, int(batch_size), int(max_length)
        self.device, self.dtype = embeddings.device, embeddings.dtype
        if graphs is None:
            graphs = self.device.type == "cuda"
        if graphs and self.device.type != "cuda":
            raise ValueError("graphs=True needs a model on a CUDA device")
        self.graphs, self.warmup_steps = bool(graphs), max(1, int(warmup_steps))
        self._cache_argument = _cache_argument(model)
        self._keep_last = "logits_to_keep" in inspect.signature(type(model).forward).parameters
        # cache columns: a multiple of 16, so the mask's rows stay aligned for SDPA's kernels
        columns = _round_up(self.max_length, 16)
        self.cache = StaticCache(config=config, max_cache_len=columns)
        b, device = self.batch_size, self.device
        self._columns = torch.arange(columns, device=device)
        self._attendable = torch.ones(b, columns, dtype=torch.bool, device=device)  # padding is False
        self._tokens = torch.zeros(b, 1, dtype=torch.long, device=device)  # the step's input token
        self._positions = torch.zeros(b, 1, dtype=torch.long, device=device)  # its position id
        self._cache_position = torch.zeros(1, dtype=torch.long, device=device)  # the column it is written at
        self._sequence = torch.zeros(b, columns + 1, dtype=torch.long, device=device)  # prompt and new tokens
        self._logits = None  # the step's logits [batch, vocab], made by the first step
        self._graph = None
        self._eager_steps = 0  # steps run eagerly on CUDA before the capture

    # ---- the step

    def _mask(self, queries):
        """The additive mask [batch, 1, queries, columns] for queries at cache positions
        ``queries`` (a [queries] or [1] device tensor): 0 where a key may be attended."""
        allowed = (self._columns[None, :] <= queries[:, None])[None] & self._attendable[:, None, :]
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        lowest = torch.full((), torch.finfo(self.dtype).min, dtype=self.dtype, device=self.device)
        return torch.where(allowed, zero, lowest)[:, None]

    def _forward(self, input_ids, mask, positions):
        kwargs = {self._cache_argument: self.cache}
        if self._keep_last:  # the prompt's last logits only
            kwargs["logits_to_keep"] = 1
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, **kwargs)
        return out.logits[:, -1, :]

    def _step(self):
        """One token for every row, with no host read: the forward over the static cache,
        argmax, and the static buffers moved on to the next step."""
        logits = self._forward(self._tokens, self._mask(self._cache_position), self._positions)
        self._logits.copy_(logits)
        chosen = torch.argmax(logits, dim=-1, keepdim=True)
        self._sequence.index_copy_(1, self._cache_position + 1, chosen)
        self._tokens.copy_(chosen)
        self._positions.add_(1)
        self._cache_position.add_(1)

    def _run_step(self):
        if self._graph is not None:
            self._graph.replay()
        elif not self.graphs:
            self._step()
        elif self._eager_steps < self.warmup_steps:
            self._warm_up()
        else:
            self._capture()
            self._graph.replay()

    def _warm_up(self):
        """One real step on a side stream, as torch.cuda.graphs asks before a capture."""
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            self._step()
        torch.cuda.current_stream(self.device).wait_stream(side)
        self._eager_steps += 1

    def _capture(self):
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):  # records launches; nothing runs
                self._step()
        except Exception as error:
            raise RuntimeError(f"GraphDecoder: the decode step could not be captured ({type(error).__name__}: "
                               f"{error}); GraphDecoder(..., graphs=False) runs it eagerly") from error
        self._graph = graph

    # ---- generation

    def _prefill(self, input_ids, attention_mask):
        b, prompt = input_ids.shape
        self.cache.reset()
        self._attendable.fill_(True)
        if attention_mask is None:
            positions = torch.arange(prompt, device=self.device).expand(b, prompt)
        else:
            attention_mask = attention_mask.to(self.device, torch.bool)
            self._attendable[:, :prompt].copy_(attention_mask)
            positions = attention_mask.long().cumsum(-1) - 1  # as generate: pads count nothing
            positions = positions.masked_fill(~attention_mask, 1)
        queries = torch.arange(prompt, device=self.device)
        logits = self._forward(input_ids, self._mask(queries), positions)
        if self._logits is None:
            self._logits = torch.empty_like(logits)
        self._logits.copy_(logits)
        chosen = torch.argmax(logits, dim=-1, keepdim=True)
        self._sequence[:, :prompt].copy_(input_ids)
        self._sequence[:, prompt:prompt + 1].copy_(chosen)
        self._tokens.copy_(chosen)
        self._positions.copy_(positions[:, -1:] + 1)
        self._cache_position.fill_(prompt)

    @torch.no_grad()
    def generate(self, input_ids, max_new_tokens, *, attention_mask=None, eos_token_id=None, pad_token_id=None):
        """``input_ids`` [batch_size, prompt] followed by up to ``max_new_tokens`` greedy tokens,
        as ``model.generate(input_ids, do_sample=False, ...)`` returns them. EOS and pad ids
        default to the model's generation config."""
        input_ids = input_ids.to(self.device)
        b, prompt = input_ids.shape
        if b != self.batch_size:
            raise ValueError(f"a batch of {b} rows for a decoder of {self.batch_size}")
        if max_new_tokens < 1:
            return input_ids.clone()
        if prompt + max_new_tokens - 1 > self.max_length:
            raise ValueError(f"{prompt} prompt tokens and {max_new_tokens} new ones need max_length >= "
                             f"{prompt + max_new_tokens - 1}, the decoder has {self.max_length}")
        self._prefill(input_ids, attention_mask)
        for _ in range(max_new_tokens - 1):
            self._run_step()
        sequence = self._sequence[:, :prompt + max_new_tokens].clone()
        generation = getattr(self.model, "generation_config", None)
        if eos_token_id is None:
            eos_token_id = getattr(generation, "eos_token_id", None)
        if pad_token_id is None:
            pad_token_id = getattr(generation, "pad_token_id", None)
        return _ended(sequence, prompt, _token_ids(eos_token_id), pad_token_id)


def _ended(sequence, prompt, eos, pad):
    """``sequence`` as generate ends it: after a row's first EOS, pad ids (EOS when there is no
    pad id); cut after the step where every row has ended."""
    if not eos:
        return sequence
    new = sequence[:, prompt:]
    is_eos = torch.isin(new, torch.tensor(eos, device=new.device))
    before = is_eos.long().cumsum(-1) - is_eos.long()  # EOS tokens strictly before each step
    new = new.masked_fill(before > 0, eos[0] if pad is None else pad)
    ended = is_eos.any(-1)
    if bool(ended.all()):
        last = int(is_eos.long().argmax(-1).max())
        new = new[:, :last + 1]
    return torch.cat([sequence[:, :prompt], new], dim=1)


def generate_with_graphs(model, input_ids, max_new_tokens, *, attention_mask=None, max_length=None, graphs=None,
                         **kwargs):
    """Greedy decode of ``input_ids`` through a fresh ``GraphDecoder`` sized for this call.
    For repeated calls keep a decoder: its capture is made once."""
    max_length = max_length or input_ids.shape[1] + max_new_tokens
    decoder = GraphDecoder(model, input_ids.shape[0], max_length, graphs=graphs)
    return decoder.generate(input_ids, max_new_tokens, attention_mask=attention_mask, **kwargs)
