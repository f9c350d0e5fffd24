import math

import pytest
import torch
import torch.nn.functional as F

from makemore.data import Dataset, Rows, Vocab
from makemore.errors import MakemoreError
from makemore.models import REGISTRY
from makemore.sample import Sampling, generate

cls = REGISTRY["transformer"]


def small_model(seed=0, **kw):
    torch.manual_seed(seed)
    config = dict(vocab_size=27, max_len=15, n_layer=2, n_head=4, n_embd=32)
    model = cls(cls.Config(**{**config, **kw})).double().eval()
    with torch.no_grad():  # GPT init makes attention nearly uniform; bolder weights test more
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def test_makemore_py_architecture_has_204571_parameters():
    """4 layers, 4 heads, n_embd 64, max_len 15 (16 positions), 27 tokens, untied head: makemore.py's 0.20M;
    tying the head to the token embedding drops its 27 x 64 matrix (the bias stays)."""
    separate = cls(cls.Config(vocab_size=27, max_len=15, head="separate"))
    tied = cls(cls.Config(vocab_size=27, max_len=15, head="tied"))
    print("parameters separate", separate.num_params(), "tied", tied.num_params())
    assert separate.num_params() == 204571
    assert tied.num_params() == 204571 - 27 * 64


def test_tied_head_is_a_linear_layer_with_the_token_embedding_as_weight():
    """Same weights in a separate-head model whose lm_head copies wte: identical logits, and the
    tied embedding's gradient is the sum of its two uses (input lookup + output layer)."""
    tied = small_model(head="tied")
    separate = (
        cls(cls.Config(vocab_size=27, max_len=15, n_layer=2, n_head=4, n_embd=32, head="separate")).double().eval()
    )
    state = {k: v for k, v in tied.state_dict().items() if k != "lm_bias"}
    separate.load_state_dict(
        {**state, "lm_head.weight": tied.wte.weight.detach().clone(), "lm_head.bias": tied.lm_bias.detach().clone()}
    )
    idx = torch.randint(0, 27, (4, 16))
    diff = (tied(idx) - separate(idx)).abs().max().item()
    tied(idx).square().mean().backward()
    separate(idx).square().mean().backward()
    grad_diff = (tied.wte.weight.grad - (separate.wte.weight.grad + separate.lm_head.weight.grad)).abs().max().item()
    print("max |tied - separate| logits", diff, "wte gradient", grad_diff)
    assert diff < 1e-12 and grad_diff < 1e-12
    assert separate.lm_head.weight.grad.abs().max() > 1e-3  # the output use really contributes


def test_tied_model_round_trips_through_a_checkpoint(tmp_path):
    """No aliased tensors in the state_dict, so safetensors can write it; reloading gives the same logits."""
    from makemore import checkpoint

    model = small_model(head="tied").float()
    vocab = Vocab(tuple("abcdefghijklmnopqrstuvwxyz"))
    run = checkpoint.RunInfo(
        type="transformer", source="names.txt", max_item_len=15, max_len=15, params=model.num_params(), skipped_items=0
    )
    checkpoint.save(tmp_path / "m.safetensors", checkpoint.Checkpoint(model=model, vocab=vocab, run=run))
    loaded = checkpoint.load(tmp_path / "m.safetensors").model
    meta, _ = checkpoint._read(tmp_path / "m.safetensors")
    idx = torch.randint(0, 27, (3, 16))
    diff = (loaded(idx) - model(idx)).abs().max().item()
    print("head", meta["config"]["head"], "max |reloaded - saved| logits", diff)
    assert meta["config"]["head"] == "tied" and diff == 0


def test_attention_matches_an_explicit_masked_softmax():
    model = small_model()
    attn = model.blocks[0].attn
    x = torch.randn(3, 10, 32, dtype=torch.float64)
    got = attn(x)
    q, k, v = attn.c_attn(x).split(32, dim=2)
    heads = []
    for h in range(4):  # one head at a time, the lecture's way: wei = q k^T / sqrt(hs), mask, softmax
        sl = slice(8 * h, 8 * h + 8)
        wei = q[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(8)
        wei = wei.masked_fill(torch.ones(10, 10).tril() == 0, float("-inf")).softmax(-1)
        heads.append(wei @ v[..., sl])
    want = attn.c_proj(torch.cat(heads, dim=-1))
    diff = (got - want).abs().max().item()
    print("max |sdpa - explicit attention|", diff)
    assert diff < 1e-12


@pytest.mark.parametrize("chunks", [[1] * 16, [5, 1, 1, 4, 3, 2], [16]])
def test_kv_cache_decoding_gives_the_same_logits_as_full_recomputation(chunks):
    """Feed the sequence to decode() in pieces (prompt, then tokens): same logits as forward()."""
    model = small_model()
    idx = torch.randint(0, 27, (5, 16))
    full = model(idx)
    state, pieces, t = None, [], 0
    for n in chunks:
        logits, state = model.decode(idx[:, t : t + n], state)
        pieces.append(logits)
        t += n
    diff = (torch.cat(pieces, dim=1) - full).abs().max().item()
    print("chunks", chunks, "max |cached - full| logits", diff)
    assert diff < 1e-10


def test_cache_refuses_to_grow_past_max_len():
    model = small_model(max_len=3)  # 4 positions: the boundary and 3 characters
    _, state = model.decode(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(MakemoreError, match=r"longer than this model's 4 positions \(max_len 3"):
        model.decode(torch.zeros(2, 1, dtype=torch.long), state)


def test_heads_must_divide_the_width():
    assert any("divisible" in p for p in cls.Config(n_embd=30, n_head=4).problems())
    assert any("--head" in p for p in cls.Config(head="shared").problems())
    assert any("--emb-dropout" in p for p in cls.Config(emb_dropout=1.0).problems())
    assert cls.Config().problems() == []
    with pytest.raises(MakemoreError, match="divisible.*; --head"):  # validate() raises them all in one line
        cls.Config(n_embd=30, n_head=4, head="shared").validate()
    cls.Config().validate()


@pytest.mark.parametrize("name", ["transformer", "rnn", "gru", "lstm", "bow"])
@pytest.mark.parametrize("options", [{}, {"prefix": "ma", "temperature": 0.8, "top_k": 5}, {"top_p": 0.9}])
def test_sampling_with_the_cache_draws_the_same_items_as_without(name, options):
    """Same generator seed, incremental vs full recompute: identical items (prefix, top-k, top-p)."""
    torch.manual_seed(0)
    model = REGISTRY[name](REGISTRY[name].Config(vocab_size=27, max_len=15))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    vocab = Vocab(tuple("abcdefghijklmnopqrstuvwxyz"))
    cached = generate(model, vocab, 64, 15, torch.Generator().manual_seed(1), how=Sampling(**options), cache=True)
    full = generate(model, vocab, 64, 15, torch.Generator().manual_seed(1), how=Sampling(**options), cache=False)
    print(name, options, cached[:5])
    assert cached == full
    assert all(s.startswith(options.get("prefix", "")) and len(s) <= 15 for s in cached)
    assert len(set(cached)) > 20  # really sampled, not one repeated string


def test_padding_is_masked_out_of_the_loss():
    """A padded batch gives the mean NLL over real targets only, whatever the padding tokens are."""
    from makemore.train import batch_loss

    model = small_model().float()
    data = Dataset.from_items(["emma", "olivia", "ava", "isabella", "sophia"])
    X, Y = Rows(data.split("train"))[:]
    X2 = X.clone()
    X2[Y == -1] = 5  # garbage where there is no target (X at padding positions)
    logits = model(X).double()
    keep = Y != -1
    want = F.cross_entropy(logits[keep], Y[keep])
    for xs in (X, X2):
        got = batch_loss(model, xs, Y).double()
        print("padded batch loss", got.item(), "real targets only", want.item())
        assert abs(got - want) < 1e-5


def test_packed_rows_give_each_item_its_own_logits():
    """Items packed back to back in rows (with positions restarting per item) get exactly the
    logits they get padded one per row: an item never attends to its row neighbours."""
    from makemore.data import pack

    model = small_model()
    data = Dataset.from_items(
        ["emma", "olivia", "ava", "isabella", "sophia", "mia", "charlotte", "amelia", "x", "evelyn"]
    )
    X, Y = Rows(data.split("train"))[:]
    Xp, Yp, pos = pack(X, Y, 16)
    assert len(Xp) < len(X)
    padded, packed = model(X), model(Xp, pos)
    row_of = {tuple(X[i, : int((Y[i] != -1).sum())].tolist()): i for i in range(len(X))}
    diff, matched = 0.0, 0
    for r in range(len(Xp)):
        starts = (pos[r] == 0).nonzero().flatten().tolist() + [Xp.size(1)]
        for a, b in zip(starts, starts[1:]):
            if Yp[r, a] == -1:
                continue  # a leftover slot
            i = row_of[tuple(Xp[r, a:b].tolist())]
            diff = max(diff, (packed[r, a:b] - padded[i, : b - a]).abs().max().item())
            matched += 1
    assert matched == len(X)
    loss_packed = F.cross_entropy(packed[Yp != -1], Yp[Yp != -1]).item()
    loss_padded = F.cross_entropy(padded[Y != -1], Y[Y != -1]).item()
    print("max |packed - padded| logits", diff, "loss", loss_packed, loss_padded)
    assert diff < 1e-12 and abs(loss_packed - loss_padded) < 1e-12


def test_dropout_keeps_the_given_fraction_and_rescales():
    from makemore.models.transformer import Dropout

    drop = Dropout(0.2)
    x = torch.ones(1000, 999, requires_grad=True)
    torch.manual_seed(0)
    y = drop(x)
    y.sum().backward()
    kept = y != 0
    print("kept fraction", kept.float().mean().item())
    assert abs(kept.float().mean().item() - 0.8) < 0.002
    assert torch.allclose(y[kept], torch.tensor(1 / 0.8)) and torch.equal(x.grad, y.detach())
    # the four 16-bit lanes of each 64-bit draw are independent: no lane keeps more than the others
    lanes = kept.flatten()[: 4 * (kept.numel() // 4)].view(-1, 4).float().mean(0)
    print("kept fraction per lane", lanes.tolist())
    assert (lanes - 0.8).abs().max() < 0.004
    drop.eval()
    assert drop(x) is x


def test_preset_best_reaches_the_checkpoint_and_a_flag_beats_it(tmp_path, capsys, small_names):
    """The preset's options, and the default recipe's where the preset says nothing, are what the run
    saved; a flag given on the command line beats the preset (no literal of the recipe restated here)."""
    from makemore import checkpoint

    from conftest import run_cli

    argv = ["train", "--type", "transformer", "--preset", "best", "-i", small_names, "-o", tmp_path / "r", "-q"]
    code, _, err = run_cli(capsys, *argv, "--max-steps", "2", "--eval-interval", "2")
    assert code == 0, err
    meta, _ = checkpoint._read(tmp_path / "r" / checkpoint.BEST)
    cls = REGISTRY["transformer"]
    expected = {**cls.train_defaults, **cls.presets["best"], "max_steps": 2, "eval_interval": 2}
    saved = {**meta["train_config"], **meta["config"]}
    assert all(saved[k] == v for k, v in expected.items()), {k: (saved[k], v) for k, v in expected.items()}
    assert meta["train_config"]["ema"] > 0  # the transformer evaluates and saves its weight average


def test_packed_rows_are_as_wide_as_the_positions_up_to_16_or_the_longest_item():
    """Attention grows with a row's width: one long item in the data must not widen every row."""
    from makemore.data import Split

    vocab = Vocab(("a", "b", "c"))
    widths = {}
    for max_len in (15, 1000):
        model = REGISTRY["transformer"](REGISTRY["transformer"].Config(vocab_size=4, max_len=max_len, n_embd=8))
        for items in (["ab", "abc", "c"], ["ab", "a" * 100])[: 1 + (max_len > 100)]:
            X, Y, pos = model.shape_batch(*Rows(Split.of(items, vocab))[:], True)
            widths[max_len, len(items[-1])] = X.size(1)
    assert widths == {(15, 1): 16, (1000, 1): 16, (1000, 100): 101}


def test_attention_weights_are_the_ones_forward_averages_with():
    """weights() writes softmax(q k^T / sqrt(hs)) out by hand; forward uses the fused kernel. The
    written-out weights times the values, through the output projection, give forward's output."""
    model = small_model()
    idx = torch.tensor([[0, 5, 13, 13, 1]])
    maps = model.attention(idx)
    assert maps.shape == (2, 4, 5, 5)
    print("max |row sum - 1|", (maps.sum(-1) - 1).abs().max().item())
    assert torch.allclose(maps.sum(-1), torch.ones(2, 4, 5, dtype=maps.dtype))
    assert (maps.triu(1) == 0).all()  # no query looks ahead
    x = model.wte(idx) + model.wpe(torch.arange(5))
    attn = model.blocks[0].attn
    h = model.blocks[0].ln_1(x)
    v = attn.c_attn(h).split(32, dim=2)[2].view(1, 5, 4, 8).transpose(1, 2)
    by_hand = attn.c_proj((maps[0] @ v[0]).transpose(0, 1).reshape(1, 5, 32))
    fused = attn(h)
    diff = (by_hand - fused).abs().max().item()
    print("max |weights @ v - forward|", diff)
    assert diff < 1e-10


def test_attention_refuses_a_row_longer_than_the_positions():
    with pytest.raises(MakemoreError):
        small_model().attention(torch.zeros(1, 17, dtype=torch.long))


def test_preset_quick_trains_with_muon_little_dropout_and_the_speedrun_levers(tmp_path, capsys):
    from makemore import checkpoint

    from conftest import run_cli

    out = tmp_path / "r"
    code, _, err = run_cli(
        capsys, "train", "--type", "transformer", "--preset", "quick", "-o", out, "-q", "--max-steps", "3"
    )
    assert code == 0, err
    meta, _ = checkpoint._read(out / checkpoint.BEST)
    assert (meta["config"]["dropout"], meta["config"]["emb_dropout"]) == (0.1, 0.1)
    assert (meta["train_config"]["optimizer"], meta["train_config"]["ema"]) == ("muon", 0.995)
    assert (meta["config"]["activation"], meta["config"]["qk_norm"]) == ("relu2", True)
    assert (meta["train_config"]["schedule"], meta["train_config"]["cooldown"]) == ("wsd", 0.5)
    _, last = checkpoint._read(out / checkpoint.LAST)
    momenta = [k for k in last if k.startswith("optim.") and k.endswith(".momentum_buffer")]
    assert len(momenta) == 4 * 4  # Muon's state, saved for --resume: one per hidden matrix
