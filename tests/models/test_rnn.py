import pytest
import torch
from torch import nn

from makemore.models import REGISTRY
from makemore.models.rnn import ElmanCell, GRUCell, LSTMCell

E, H = 6, 5


def test_elman_cell_matches_torch_rnn_cell():
    torch.manual_seed(0)
    ref, mine = nn.RNNCell(E, H).double(), ElmanCell(E, H).double()
    with torch.no_grad():  # [x, h] @ W^T = x W_ih^T + h W_hh^T
        mine.xh_to_h.weight.copy_(torch.cat([ref.weight_ih, ref.weight_hh], dim=1))
        mine.xh_to_h.bias.copy_(ref.bias_ih + ref.bias_hh)
    x, h = torch.randn(7, E, dtype=torch.float64), torch.randn(7, H, dtype=torch.float64)
    diff = (mine(x, h) - ref(x, h)).abs().max().item()
    print("max |elman - nn.RNNCell|", diff)
    assert diff < 1e-12


def test_gru_cell_matches_torch_gru_cell():
    """torch: h' = (1-z) n + z h with n = tanh(W_in x + r * (W_hn h + b_hn)); ours is Cho et al.'s
    (and makemore.py's) candidate tanh(W [x, r * h]). The two agree when b_hn = 0 and W_hn is
    diagonal (then r * (W_hn h) = W_hn (r * h)), so we compare there. Our z gates the other way
    round (z chooses the candidate): our z weights are torch's negated."""
    torch.manual_seed(0)
    ref, mine = nn.GRUCell(E, H).double(), GRUCell(E, H).double()
    with torch.no_grad():
        ref.bias_hh[2 * H :] = 0
        ref.weight_hh[2 * H :] = torch.diag(torch.randn(H, dtype=torch.float64))
        (w_ir, w_iz, w_in), (w_hr, w_hz, w_hn) = ref.weight_ih.chunk(3), ref.weight_hh.chunk(3)
        (b_ir, b_iz, b_in), (b_hr, b_hz, _) = ref.bias_ih.chunk(3), ref.bias_hh.chunk(3)
        mine.xh_to_r.weight.copy_(torch.cat([w_ir, w_hr], 1))
        mine.xh_to_r.bias.copy_(b_ir + b_hr)
        mine.xh_to_z.weight.copy_(-torch.cat([w_iz, w_hz], 1))
        mine.xh_to_z.bias.copy_(-(b_iz + b_hz))
        mine.xh_to_hbar.weight.copy_(torch.cat([w_in, w_hn], 1))
        mine.xh_to_hbar.bias.copy_(b_in)
    x, h = torch.randn(7, E, dtype=torch.float64), torch.randn(7, H, dtype=torch.float64)
    diff = (mine(x, h) - ref(x, h)).abs().max().item()
    print("max |gru - nn.GRUCell|", diff)
    assert diff < 1e-12


def test_lstm_cell_matches_torch_lstm_cell():
    torch.manual_seed(0)
    ref, mine = nn.LSTMCell(E, H).double(), LSTMCell(E, H).double()
    with torch.no_grad():  # same gate order (i, f, g, o) as torch
        mine.xh_to_gates.weight.copy_(torch.cat([ref.weight_ih, ref.weight_hh], dim=1))
        mine.xh_to_gates.bias.copy_(ref.bias_ih + ref.bias_hh)
    x = torch.randn(7, E, dtype=torch.float64)
    h, c = torch.randn(7, H, dtype=torch.float64), torch.randn(7, H, dtype=torch.float64)
    (h1, c1), (h2, c2) = mine(x, (h, c)), ref(x, (h, c))
    diff = max((h1 - h2).abs().max().item(), (c1 - c2).abs().max().item())
    print("max |lstm - nn.LSTMCell| over h and c", diff)
    assert diff < 1e-12


def test_lstm_forget_gate_starts_open():
    cell = LSTMCell(E, H)
    assert torch.all(cell.xh_to_gates.bias[H : 2 * H] == 1.0)


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm"])
def test_whole_sequence_equals_an_explicit_loop_and_incremental_decoding(name):
    torch.manual_seed(0)
    model = REGISTRY[name](REGISTRY[name].Config(vocab_size=27, max_len=11)).double().eval()
    idx = torch.randint(0, 27, (4, 12))
    full = model(idx)
    # the slow reference: one step at a time from the learned start state
    state = model.cell.init_state(model.start.expand(4, -1))
    want = []
    for t in range(12):
        state = model.cell(model.wte.weight[idx[:, t]], state)
        want.append(model.lm_head(model.cell.output(state)))
    diff_loop = (full - torch.stack(want, 1)).abs().max().item()
    state, pieces = None, []
    for a, b in [(0, 5), (5, 6), (6, 12)]:
        logits, state = model.decode(idx[:, a:b], state)
        pieces.append(logits)
    diff_inc = (full - torch.cat(pieces, 1)).abs().max().item()
    print(name, "max |forward - loop|", diff_loop, "max |forward - decode in pieces|", diff_inc)
    assert diff_loop < 1e-12 and diff_inc < 1e-12


@pytest.mark.parametrize("name,params", [("rnn", 11803), ("gru", 28315), ("lstm", 36571)])
def test_parameter_counts_at_makemore_py_sizes(name, params):
    """n_embd 64, n_embd2 64, 27 tokens (makemore.py: rnn 0.01M, gru 0.03M)."""
    model = REGISTRY[name](REGISTRY[name].Config(vocab_size=27))
    print(name, model.num_params())
    assert model.num_params() == params


def test_gradients_reach_the_first_step_through_the_lstm():
    """The loss at the last position depends on the first token (the point of the cell state)."""
    torch.manual_seed(0)
    model = REGISTRY["lstm"](REGISTRY["lstm"].Config(vocab_size=27, max_len=15))
    idx = torch.randint(0, 27, (2, 16))
    emb = model.wte(idx).detach().requires_grad_()
    state = model.cell.init_state(model.start.expand(2, -1))
    for t in range(16):
        state = model.cell(emb[:, t], state)
    model.lm_head(model.cell.output(state)).sum().backward()
    g = emb.grad[:, 0].abs().max().item()
    print("|d logits_15 / d emb_0|", g)
    assert g > 1e-6
