"""The splitter that feeds text-to-speech while the LLM is still writing."""

from perslm_voice.sentences import SentenceSplitter


def run(pieces: list[str], **kw) -> list[str]:
    splitter = SentenceSplitter(**kw)
    out = []
    for piece in pieces:
        out += splitter.feed(piece)
    return out + splitter.flush()


def test_first_clause_goes_early_then_whole_sentences():
    text = (
        "Well, the capital of France, as you know, is Paris. It is lovely in spring, I hear. Bye!"
    )
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    assert run(pieces) == [
        "Well, the capital of France,",
        "as you know, is Paris.",
        "It is lovely in spring, I hear.",
        "Bye!",
    ]


def test_chunks_are_emitted_as_soon_as_complete():
    splitter = SentenceSplitter()
    assert splitter.feed("Hello there.") == []  # the stop could still be "there.com"
    assert splitter.feed(" How") == ["Hello there."]


def test_abbreviations_and_decimals_do_not_split():
    assert run(["Dr. Smith paid 3.5 dollars, e.g. today. Fine."]) == [
        "Dr. Smith paid 3.5 dollars, e.g. today.",
        "Fine.",
    ]


def test_long_run_without_punctuation_is_cut_at_a_space():
    chunks = run(["word " * 200], max_chunk_chars=100)
    assert all(len(c) <= 100 for c in chunks)
    assert " ".join(chunks).split() == ["word"] * 200
