import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from makemore import data
from makemore.data import (
    BOUNDARY,
    IGNORE,
    Dataset,
    Vocab,
    bundled_names,
    encode_sequences,
    encode_windows,
    pack,
    read_items,
)
from makemore.errors import MakemoreError

from conftest import PRINT_PEAK_RSS_KB


def test_bundled_names_is_the_lecture_dataset():
    items, skipped = read_items(bundled_names())
    assert len(items) == 32033 and skipped == 0
    assert len(Vocab.from_items(items)) == 27


def test_split_sizes_are_the_lectures():
    data = Dataset(read_items(bundled_names())[0])
    sizes = [len(data.windows(split, 3)[0]) for split in ("train", "dev", "test")]
    assert sizes == [182625, 22655, 22866]
    assert [len(data.splits[s]) for s in ("train", "dev", "test")] == [25626, 3203, 3204]


def _lecture_windows(items, vocab, context_size):
    """The lecture's build_dataset loop, as the slow reference."""
    X, Y = [], []
    for item in items:
        context = [BOUNDARY] * context_size
        for ix in vocab.encode(item) + [BOUNDARY]:
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


@pytest.mark.parametrize("context_size", [1, 3, 8])
def test_windows_match_the_lecture_loop(context_size):
    items = ["emma", "olivia", "ava", "x", "isabella"]
    vocab = Vocab.from_items(items)
    X, Y = encode_windows(*encode_sequences(items, vocab), context_size)
    Xr, Yr = _lecture_windows(items, vocab, context_size)
    assert torch.equal(X, Xr) and torch.equal(Y, Yr)


def test_sequences_shift_by_one_and_pad_with_ignore():
    vocab = Vocab.from_items(["ab", "b"])
    X, Y = encode_sequences(["ab", "b"], vocab)
    assert X.tolist() == [[0, 1, 2], [0, 2, 0]]
    assert Y.tolist() == [[1, 2, 0], [2, 0, IGNORE]]


@given(st.lists(st.text(min_size=1, max_size=12).map(str.strip).filter(bool), min_size=1, max_size=20))
def test_vocab_round_trips_any_text(items):
    vocab = Vocab.from_items(items)
    assert len(vocab) == len(set("".join(items))) + 1
    for item in items:
        ids = vocab.encode(item)
        assert BOUNDARY not in ids
        assert vocab.decode(ids) == item


def test_dot_is_data_not_the_boundary():
    vocab = Vocab.from_items(["a.b", "c d"])
    assert vocab.encode(".")[0] != BOUNDARY
    assert vocab.decode(vocab.encode("a.b")) == "a.b"


def test_unknown_character_is_a_clear_error():
    with pytest.raises(MakemoreError, match="not in the vocabulary: 'z'"):
        Vocab.from_items(["ab"]).encode("az")


def test_bom_crlf_whitespace_and_blank_lines(tmp_path):
    f = tmp_path / "items.txt"
    f.write_bytes("\ufeffémile\r\n\r\n  zoë  \r\n\n\tanne marie\r\n".encode("utf-8"))
    assert read_items(f)[0] == ["émile", "zoë", "anne marie"]


def test_long_items_are_skipped_and_counted(tmp_path):
    f = tmp_path / "items.txt"
    f.write_text("ab\n" + "x" * 50 + "\ncd\n", encoding="utf-8")
    assert read_items(f, max_item_len=10) == (["ab", "cd"], 1)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "has no items"),
        (b"\n  \n\t\n", "has no items"),
        (b"caf\xe9\n", "not valid UTF-8"),
        (b"ab\x00cd\n", "NUL bytes"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path, content, message):
    f = tmp_path / "bad.txt"
    f.write_bytes(content)
    with pytest.raises(MakemoreError, match=message):
        read_items(f)


@given(st.lists(st.text(alphabet="ab \r\n\u00e9\u4e2d\U0001f642", max_size=12), min_size=1, max_size=8))
def test_reading_in_chunks_splits_lines_exactly_as_reading_whole(tmp_path_factory, lines):
    """Chunks of 5 bytes cut through lines and multi-byte characters; the items are the same."""
    f = tmp_path_factory.mktemp("chunks") / "items.txt"
    raw = "\n".join(lines).encode("utf-8")
    f.write_bytes(raw)
    whole = [s.strip() for s in raw.decode("utf-8").split("\n") if s.strip()]
    expected = [s for s in whole if len(s) <= 5]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "READ_CHUNK", 5)
        if not expected:
            with pytest.raises(MakemoreError, match="has no items"):
                read_items(f, max_item_len=5)
        else:
            assert read_items(f, max_item_len=5) == (expected, len(whole) - len(expected))


def test_errors_name_the_byte_offset_in_the_whole_file(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "READ_CHUNK", 4)
    f = tmp_path / "bad.txt"
    f.write_bytes(b"abc\ndef\ngh\xffi\n")
    with pytest.raises(MakemoreError, match="byte offset 10"):
        read_items(f)
    f.write_bytes(b"\xef\xbb\xbfabc\ndefgh\x00\n")
    with pytest.raises(MakemoreError, match="NUL bytes at offset 12"):
        read_items(f)


def test_a_line_longer_than_any_item_is_never_held_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "READ_CHUNK", 1 << 16)
    f = tmp_path / "long.txt"
    f.write_bytes(b"emma\n" + b"x" * (3 << 20) + b"\nava\n" + b"y" * (3 << 20))
    held, real = [], data._line_chunks

    def recording(*args):
        for offset, lines in real(*args):
            held.append(len(lines or b""))
            yield offset, lines

    monkeypatch.setattr(data, "_line_chunks", recording)
    assert read_items(f, max_item_len=10) == (["emma", "ava"], 2)
    assert max(held) < (1 << 20) + (1 << 17)  # the 3 MB lines went by in 64 KB reads


def test_a_sparse_binary_file_is_reported_without_reading_it(tmp_path):
    """A 2 GB file of NULs: one chunk read, the offset of its first NUL, well under 1 GB."""
    f = tmp_path / "sparse.bin"
    with open(f, "wb") as out:
        out.truncate(2 << 30)
    code = "import sys; from makemore.data import read_items\n"
    code += f"try: read_items(sys.argv[1])\nexcept Exception as e: print(e)\n{PRINT_PEAK_RSS_KB}"
    out = subprocess.run([sys.executable, "-c", code, str(f)], capture_output=True, text=True, check=True).stdout
    message, rss_kb = out.splitlines()
    print(message, f"(peak RSS {int(rss_kb) / 1024:.0f} MB)")
    assert "NUL bytes at offset 0" in message and int(rss_kb) < 1 << 20


def test_missing_directory_and_fifo_inputs(tmp_path):
    with pytest.raises(MakemoreError, match="not found"):
        read_items(tmp_path / "nope.txt")
    with pytest.raises(MakemoreError, match="not a regular file"):
        read_items(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(MakemoreError, match="not a regular file"):  # and no hang
        read_items(fifo)


def test_membership_marks_each_split():
    data = Dataset([f"item{i}" for i in range(100)])
    for split in ("train", "dev", "test"):
        assert all(data.membership(s) == split for s in data.splits[split])
    assert data.membership("never seen") == "new"


def test_pack_holds_every_item_once_with_its_positions():
    """Each padded item reappears whole in one packed row, with positions 0.. n-1; leftover
    slots are empty one-token items (boundary, position 0, no target); rows are ~90% real."""
    data = Dataset(read_items(bundled_names())[0])
    X, Y = data.sequences("train")
    ix = torch.randint(0, len(X), (64,), generator=torch.Generator().manual_seed(1))
    Xp, Yp, pos = pack(X[ix], Y[ix], 16)
    assert Xp.shape == Yp.shape == pos.shape and Xp.shape[1] == 16
    found = []
    for row_x, row_y, row_p in zip(Xp.tolist(), Yp.tolist(), pos.tolist()):
        starts = [c for c, p in enumerate(row_p) if p == 0] + [16]
        for a, b in zip(starts, starts[1:]):
            assert row_p[a:b] == list(range(b - a))
            if row_y[a] != IGNORE:
                found.append((tuple(row_x[a:b]), tuple(row_y[a:b])))
            else:  # leftover slot
                assert b - a == 1 and row_x[a] == BOUNDARY
    want = [(tuple(x[y != IGNORE].tolist()), tuple(y[y != IGNORE].tolist())) for x, y in zip(X[ix], Y[ix])]
    assert sorted(found) == sorted(want)
    fill = float((Yp != IGNORE).float().mean())
    padded = float((Y[ix] != IGNORE).float().mean()) * Y.shape[1] / int((Y[ix] != IGNORE).sum(1).max())
    print(f"real tokens per slot: packed {fill:.3f}, padded to the batch's longest item {padded:.3f}")
    assert fill > 0.85 > padded


def test_pack_refuses_an_item_longer_than_a_row():
    X, Y = encode_sequences(["abcdefghij", "ab"], Vocab.from_items(["abcdefghij"]))
    with pytest.raises(MakemoreError, match="an item of 11 tokens does not fit a packed row of 8"):
        pack(X, Y, 8)
