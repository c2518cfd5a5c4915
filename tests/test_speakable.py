"""Text made for speaking: markdown, code, links, emoji, lists and tables in an LLM reply."""

from __future__ import annotations

import pytest

from perslm_voice.tts.speakable import CODE_NOTE, SpeakableStream, to_speech


@pytest.mark.parametrize(
    ("markdown", "spoken"),
    [
        (
            "The quick brown fox jumps over the lazy dog.",
            "The quick brown fox jumps over the lazy dog.",
        ),
        ("# Getting started", "Getting started."),
        ("## Done!", "Done!"),
        (
            "This is **bold**, *italic*, __strong__ and _emphasis_.",
            "This is bold, italic, strong and emphasis.",
        ),
        (
            "Keep snake_case_names and 2 * 3 * 4 as they are.",
            "Keep snake_case_names and 2 * 3 * 4 as they are.",
        ),
        ("~~old~~ new", "old new."),
        ("- eggs\n- milk\n* bread", "eggs. milk. bread."),
        ("1. Preheat the oven\n2) Mix the flour", "Preheat the oven. Mix the flour."),
        ("Call `load_config()` first.", "Call load config first."),
        ("Try `x = [i**2 for i in y]` now.", "Try a code snippet now."),
        (
            "See https://www.example.com/docs?page=2 for more.",
            "See a link to example.com for more.",
        ),
        ("Read [the guide](https://docs.python.org/3/).", "Read the guide."),
        ("Go to <http://foo.org/a/b>.", "Go to a link to foo.org."),
        ("Open `https://example.com/x` now.", "Open a link to example.com now."),
        ("Great job! 🎉🚀 You did it 👍🏽.", "Great job! You did it."),
        ("> A wise quote.", "A wise quote."),
        ("Before.\n\n---\n\nAfter.", "Before. After."),
        ("A -> B & C", "A to B and C."),
        ("Line one<br>line two", "Line one line two."),
        (r"Not \*emphasis\*", "Not *emphasis*."),
        ("![a cat](cat.png)", "an image of a cat."),
    ],
)
def test_markdown_becomes_plain_sentences(markdown, spoken):
    assert to_speech(markdown) == spoken


def test_code_blocks_are_mentioned_not_read():
    reply = "Run this:\n```python\nimport os\nprint(os.getcwd())\n```\nThat prints the folder."
    assert to_speech(reply) == f"Run this: {CODE_NOTE} That prints the folder."
    assert to_speech("```\nonly code\n```") == CODE_NOTE
    assert to_speech("Start:\n~~~\nx = 1\n~~~") == f"Start: {CODE_NOTE}"
    # A block the model never closed is still code, not words to read.
    assert to_speech("Here:\n```sh\nrm -rf build") == f"Here: {CODE_NOTE}"


def test_tables_are_read_row_by_row():
    table = "| Name | Age |\n|:---|---:|\n| Alice | 30 |\n| Bob | |\nThat's all."
    assert to_speech(table) == "Name: Alice, Age: 30. Name: Bob. That's all."
    assert to_speech("| a | b |\n| c | d |") == "a, b. c, d."


def test_nothing_to_say():
    assert to_speech("") == ""
    assert to_speech("🎉 🚀\n\n---") == ""


REPLY = (
    "# Plan\nSure! Here is **the plan**. First we load it:\n"
    "```python\nx = load('a. b')\n```\n"
    "- Check [the docs](https://example.com/x). Then run `make_it`.\n"
    "| k | v |\n|---|---|\n| size | 3 |\nAll done 🎉"
)


@pytest.mark.parametrize("piece", [1, 2, 5, 17, len(REPLY)])
def test_stream_gives_the_same_sentences_in_any_pieces(piece):
    stream = SpeakableStream()
    sentences: list[str] = []
    for i in range(0, len(REPLY), piece):
        sentences += stream.feed(REPLY[i : i + piece])
    sentences += stream.flush()
    assert " ".join(sentences) == to_speech(REPLY)
    assert sentences == [
        "Plan.",
        "Sure!",
        "Here is the plan.",
        "First we load it:",
        CODE_NOTE,
        "Check the docs.",
        "Then run make it.",
        "k: size, v: 3.",
        "All done.",
    ]


def test_stream_hands_out_a_sentence_before_the_line_ends():
    stream = SpeakableStream()
    assert stream.feed("Hello there. How are") == ["Hello there."]
    assert stream.feed(" you? I am") == ["How are you?"]
    assert stream.flush() == ["I am."]
    # The stream is ready for the next reply.
    assert stream.feed("Next. ") == ["Next."]


def test_stream_does_not_cut_inside_inline_code_or_links():
    stream = SpeakableStream()
    assert stream.feed("Use `a. b` and [x. y](u) ok. Rest") == ["Use a. b and x. y ok."]
    assert stream.flush() == ["Rest."]


def _stream(text: str, step: int = 3) -> list[str]:
    stream, out = SpeakableStream(), []
    for i in range(0, len(text), step):
        out += stream.feed(text[i : i + step])
    return out + stream.flush()


def test_first_clause_is_handed_out_early_then_whole_sentences():
    text = "Well, the capital of France, as you know, is Paris. It is lovely in spring, I hear."
    assert _stream(text) == [
        "Well, the capital of France,",
        "as you know, is Paris.",
        "It is lovely in spring, I hear.",
    ]


def test_a_first_piece_without_punctuation_ends_before_a_phrase():
    """No comma yet: the first piece may end before "because", once a few words are there, and
    only once that word is whole ("so" is not "some")."""
    text = "The sky is blue because of a process called Rayleigh scattering. It is so."
    assert _stream(text) == [
        "The sky is blue",
        "because of a process called Rayleigh scattering.",
        "It is so.",
    ]
    stream = SpeakableStream()
    assert stream.feed("I have some eggs so") == []  # "so" may yet be "soft"
    assert stream.feed(" boil") == ["I have some eggs"]
    # Too few words for a piece of their own, or a later piece: whole sentences only.
    assert _stream("It is in the box because I put it there.") == [
        "It is in the box",
        "because I put it there.",
    ]
    assert _stream("Yes. The sky is blue because of light.") == [
        "Yes.",
        "The sky is blue because of light.",
    ]


def test_abbreviations_do_not_end_sentences():
    assert _stream("Dr. Smith paid 3.5 dollars, e.g. today. Fine.") == [
        "Dr. Smith paid 3.5 dollars,",
        "e.g. today.",
        "Fine.",
    ]


def test_a_long_run_without_punctuation_is_cut_so_speech_can_start():
    text = "1,000" + ",000" * 80 + " and " + "word " * 60
    pieces = _stream(text, step=5)
    assert len(pieces) >= 3 and all(len(p) <= 160 for p in pieces)
    assert "".join(pieces).replace(" ", "").rstrip(".") == text.replace(" ", "")
