import itertools
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save

from makemore import data
from makemore.data import (
    BOUNDARY,
    IGNORE,
    SPLITS,
    CacheError,
    Dataset,
    Rows,
    Split,
    Vocab,
    Windows,
    bundled_names,
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
    data = Dataset.read(bundled_names())
    sizes = [len(Windows(data.split(split), 3)) for split in ("train", "dev", "test")]
    assert sizes == [182625, 22655, 22866]
    assert data.sizes == (25626, 3203, 3204)


def test_the_split_is_the_lectures_shuffle_of_the_items():
    """random.Random(42).shuffle of the items, then 80/10/10, as the lectures split names.txt."""
    items, _ = read_items(bundled_names())
    random.Random(42).shuffle(items)
    data = Dataset.read(bundled_names())
    assert data.items("train") + data.items("dev") + data.items("test") == items
    assert items[:3] == ["yuheng", "diondre", "xavien"]  # the lecture's first training names


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(alphabet="ab \r\u00e9\u4e2d\U0001f642\u3000\x85", max_size=6), min_size=2, max_size=40))
def test_reading_a_file_gives_its_items_shuffled_and_split(tmp_path_factory, lines):
    """Dataset.read (array operations, provisional ids, split order) against the plain reading:
    str.strip() of each line, random.Random(42).shuffle, 80/10/10."""
    f = tmp_path_factory.mktemp("read") / "items.txt"
    f.write_text("\n".join(lines), encoding="utf-8")
    items = [line.strip() for line in lines if line.strip()]
    if len(items) < 2:
        with pytest.raises(MakemoreError):
            Dataset.read(f)
        return
    data = Dataset.read(f)
    random.Random(42).shuffle(items)
    n1, n2 = int(0.8 * len(items)), int(0.9 * len(items))
    assert data.vocab == Vocab.from_items(items)
    assert (data.items("train"), data.items("dev"), data.items("test")) == (items[:n1], items[n1:n2], items[n2:])
    assert data.tokens.dtype == torch.uint8 and data.max_len == max(len(s) for s in items)


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
    X, Y = Windows(Split.of(items, vocab), context_size)[:]
    Xr, Yr = _lecture_windows(items, vocab, context_size)
    assert torch.equal(X, Xr) and torch.equal(Y, Yr)


@given(st.lists(st.text(alphabet="abc", min_size=1, max_size=9), min_size=1, max_size=12), st.data())
def test_any_batch_of_windows_or_rows_is_cut_from_the_flat_array_correctly(items, draw):
    """Windows and rows gathered for random indices equal those of the whole split, indexed."""
    split = Split.of(items, Vocab(("a", "b", "c")))
    windows = Windows(split, draw.draw(st.integers(1, 10)))
    X, Y = _lecture_windows(items, Vocab(("a", "b", "c")), windows.context_size)
    ex = torch.tensor(draw.draw(st.lists(st.integers(0, len(windows) - 1), min_size=1, max_size=20)))
    assert torch.equal(windows[ex][0], X[ex]) and torch.equal(windows[ex][1], Y[ex])
    ix = torch.tensor(draw.draw(st.lists(st.integers(0, len(items) - 1), min_size=1, max_size=20)))
    Xr, Yr = Rows(split)[ix]
    assert Xr.size(1) == max(len(items[i]) for i in ix.tolist()) + 1  # padded to the batch's longest only
    for row, i in enumerate(ix.tolist()):
        ids = Vocab(("a", "b", "c")).encode(items[i])
        n = len(ids)
        assert Xr[row, : n + 1].tolist() == [BOUNDARY] + ids and Yr[row, : n + 1].tolist() == ids + [BOUNDARY]
        assert (Xr[row, n + 1 :] == BOUNDARY).all() and (Yr[row, n + 1 :] == IGNORE).all()
    assert Rows(split).targets(ix) == sum(len(items[i]) + 1 for i in ix.tolist())


@given(st.lists(st.integers(1, 50), min_size=1, max_size=60), st.integers(1, 200))
def test_evaluation_spans_cover_every_row_once_within_the_budget(lengths, tokens):
    split = Split(torch.ones(sum(lengths), dtype=torch.uint8), torch.tensor([0, *itertools.accumulate(lengths)]))
    spans = list(Rows(split).spans(tokens))
    assert [a for a, _ in spans] == [0, *(b for _, b in spans[:-1])] and spans[-1][1] == len(lengths)
    for a, b in spans:
        assert b - a == 1 or (b - a) * (max(lengths[a:b]) + 1) <= tokens


def test_sequences_shift_by_one_and_pad_with_ignore():
    vocab = Vocab.from_items(["ab", "b"])
    X, Y = Rows(Split.of(["ab", "b"], vocab))[:]
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


@pytest.mark.slow
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
    data = Dataset.from_items([f"item{i}" for i in range(100)] + ["twice", "twice"] * 20)
    for split in ("train", "dev", "test"):
        items = [item for item in data.items(split) if item != "twice"]
        assert data.membership(items) == [split] * len(items)
    assert "twice" in data.items("test") and data.membership(["twice"]) == ["train"]  # train wins
    queries = ["never seen", "item1x", "", next(s for s in data.items("dev") if s != "twice")]
    assert data.membership(queries) == ["new", "new", "new", "dev"]


def test_a_vocabulary_beyond_255_characters_takes_two_bytes_per_token():
    items = ["".join(chr(0x4E00 + i + j) for j in range(3)) for i in range(0, 900, 3)]
    data = Dataset.from_items(items)
    assert len(data.vocab) == 901 and data.tokens.dtype == torch.int16
    assert sorted(sum((data.items(s) for s in ("train", "dev", "test")), [])) == sorted(items)


def test_the_cache_round_trips_and_refuses_anything_damaged(tmp_path):
    data = Dataset.from_items([f"item{i}" for i in range(50)])
    path = tmp_path / "data.safetensors"
    path.write_bytes(data.to_bytes(note="kept"))
    loaded, facts = Dataset.load(path)
    assert loaded.same_items(data) and loaded.sizes == data.sizes and facts["note"] == "kept"
    raw = path.read_bytes()
    bad_tokens = Dataset(data.vocab, data.tokens.clone().fill_(len(data.vocab)), data.offsets, data.sizes)
    bad_offsets = Dataset(data.vocab, data.tokens, data.offsets.flip(0), data.sizes)
    bad_sizes = Dataset(data.vocab, data.tokens, data.offsets, (40, 5, 4))
    damaged = {
        "cut short": raw[: len(raw) // 2],
        "empty": b"",
        "tokens outside the vocabulary": bad_tokens.to_bytes(),
        "offsets out of order": bad_offsets.to_bytes(),
        "split sizes": bad_sizes.to_bytes(),
        "another file": save({"x": torch.zeros(3)}),
    }
    for what, payload in damaged.items():
        path.write_bytes(payload)
        with pytest.raises(CacheError) as e:
            Dataset.load(path)
        print(f"{what}: data.safetensors {e.value}")


def test_pack_holds_every_item_once_with_its_positions():
    """Each padded item reappears whole in one packed row, with positions 0.. n-1; leftover
    slots are empty one-token items (boundary, position 0, no target); rows are ~90% real."""
    data = Dataset.read(bundled_names())
    rows = Rows(data.split("train"))
    ix = torch.randint(0, len(rows), (64,), generator=torch.Generator().manual_seed(1))
    X, Y = rows[ix]
    Xp, Yp, pos = pack(X, Y, 16)
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
    want = [(tuple(x[y != IGNORE].tolist()), tuple(y[y != IGNORE].tolist())) for x, y in zip(X, Y)]
    assert sorted(found) == sorted(want)
    fill = float((Yp != IGNORE).float().mean())
    padded = float((Y != IGNORE).float().mean())
    print(f"real tokens per slot: packed {fill:.3f}, padded to the batch's longest item {padded:.3f}")
    assert fill > 0.85 > padded


def test_pack_in_order_reads_the_targets_item_after_item():
    """Evaluation packs in order: the targets read row after row are those of the items, in order."""
    data = Dataset.read(bundled_names())
    X, Y = Rows(data.split("dev"))[:500]
    Xp, Yp, pos = pack(X, Y, 16, in_order=True)
    assert torch.equal(Yp[Yp != IGNORE], Y[Y != IGNORE]) and torch.equal(Xp[Yp != IGNORE], X[Y != IGNORE])
    fill, padded = float((Yp != IGNORE).float().mean()), float((Y != IGNORE).float().mean())
    print(f"real tokens per slot: packed in order {fill:.3f}, padded {padded:.3f}")
    assert fill > padded + 0.2


def test_pack_refuses_an_item_longer_than_a_row():
    X, Y = Rows(Split.of(["abcdefghij", "ab"], Vocab.from_items(["abcdefghij"])))[:]
    with pytest.raises(MakemoreError, match="an item of 11 tokens does not fit a packed row of 8"):
        pack(X, Y, 8)


def test_membership_stays_exact_when_every_hash_collides(monkeypatch):
    """The hash only finds candidates; a match is always confirmed against the tokens."""
    monkeypatch.setattr(data, "_item_hashes", lambda tokens, offsets: np.zeros(len(offsets) - 1, dtype=np.uint64))
    d = Dataset.from_items([f"item{i}" for i in range(60)])
    queries = [d.items("test")[0], d.items("dev")[1], d.items("train")[2], "item99", "item1"]
    want = ["test", "dev", "train", "new", next(s for s in SPLITS if "item1" in d.items(s))]
    assert d.membership(queries) == want
