"""The language check: which language an utterance is in, weighed against who is talking.

An English-only model turns any sound into fluent English ("Thank you very much." from French), so
a doubtful English transcript has its language identified by a multilingual model. But that model,
on a short far-field stretch of real English, often leans to another language: on the AMI meeting
recordings it called one stretch Welsh (p=0.74, English 0.23) and another Thai (0.53). Rejecting on
its top guess ignored one stretch of real English in eight. So the user's language is the prior:
another language wins only on strong, consistent evidence (``decide``), and where the evidence is not
strong the transcript stands: being misheard is better than being ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Another language must be this likely in every view of the utterance to overrule the user's
# language. Measured with the multilingual base model (``scripts/bench_stt.py --language-check``):
# French and Chinese recordings 0.96-1.00 in every view; the highest other language on real
# English (AMI far-field meetings, cut at 0.3-1.0 s pauses) 0.74 (Welsh), then 0.69, 0.60, 0.53.
STRONG_EVIDENCE_PROB = 0.9
# A language the user is expected to speak (their profile's) needs only to lead: it is no surprise.
EXPECTED_LANGUAGE_PROB = 0.5


@dataclass(frozen=True)
class LanguageView:
    """One reading of the utterance by the multilingual model: its top language and how sure."""

    language: str
    probability: float
    context: str  # which reading: "as heard", "with 8 s of silence after it", ...


def decide(
    views: Sequence[LanguageView], prior: str, expected: str | None = None
) -> LanguageView | None:
    """The other language the utterance is in, when the evidence is strong and consistent; else None
    (the utterance is taken to be in ``prior``, the language the model transcribes).

    Every view must name the same language, other than ``prior``, with ``STRONG_EVIDENCE_PROB`` or
    more; ``expected`` (the user's own language, when the model cannot transcribe it) needs only
    ``EXPECTED_LANGUAGE_PROB``. One view that disagrees or is unsure keeps the prior.
    """
    if not views:
        return None
    language = views[0].language
    if language == prior or any(v.language != language for v in views):
        return None
    needed = EXPECTED_LANGUAGE_PROB if language == expected else STRONG_EVIDENCE_PROB
    if all(v.probability >= needed for v in views):
        return min(views, key=lambda v: v.probability)
    return None


def base_code(language: str | None) -> str | None:
    """ "en-US", "en_GB", "EN" -> "en" (profiles may carry a region; Whisper knows languages)."""
    if not language:
        return None
    return language.split("-")[0].split("_")[0].strip().lower() or None


def language_name(code: str | None) -> str:
    """The English name of a Whisper language code ("cy" -> "Welsh"); the code when unknown."""
    if not code:
        return "another language"
    return WHISPER_LANGUAGES.get(base_code(code) or "", code)


# The languages Whisper identifies (openai/whisper, whisper/tokenizer.py, MIT).
WHISPER_LANGUAGES = {
    "en": "English", "zh": "Chinese", "de": "German", "es": "Spanish", "ru": "Russian",
    "ko": "Korean", "fr": "French", "ja": "Japanese", "pt": "Portuguese", "tr": "Turkish",
    "pl": "Polish", "ca": "Catalan", "nl": "Dutch", "ar": "Arabic", "sv": "Swedish",
    "it": "Italian", "id": "Indonesian", "hi": "Hindi", "fi": "Finnish", "vi": "Vietnamese",
    "he": "Hebrew", "uk": "Ukrainian", "el": "Greek", "ms": "Malay", "cs": "Czech",
    "ro": "Romanian", "da": "Danish", "hu": "Hungarian", "ta": "Tamil", "no": "Norwegian",
    "th": "Thai", "ur": "Urdu", "hr": "Croatian", "bg": "Bulgarian", "lt": "Lithuanian",
    "la": "Latin", "mi": "Maori", "ml": "Malayalam", "cy": "Welsh", "sk": "Slovak",
    "te": "Telugu", "fa": "Persian", "lv": "Latvian", "bn": "Bengali", "sr": "Serbian",
    "az": "Azerbaijani", "sl": "Slovenian", "kn": "Kannada", "et": "Estonian", "mk": "Macedonian",
    "br": "Breton", "eu": "Basque", "is": "Icelandic", "hy": "Armenian", "ne": "Nepali",
    "mn": "Mongolian", "bs": "Bosnian", "kk": "Kazakh", "sq": "Albanian", "sw": "Swahili",
    "gl": "Galician", "mr": "Marathi", "pa": "Punjabi", "si": "Sinhala", "km": "Khmer",
    "sn": "Shona", "yo": "Yoruba", "so": "Somali", "af": "Afrikaans", "oc": "Occitan",
    "ka": "Georgian", "be": "Belarusian", "tg": "Tajik", "sd": "Sindhi", "gu": "Gujarati",
    "am": "Amharic", "yi": "Yiddish", "lo": "Lao", "uz": "Uzbek", "fo": "Faroese",
    "ht": "Haitian Creole", "ps": "Pashto", "tk": "Turkmen", "nn": "Nynorsk", "mt": "Maltese",
    "sa": "Sanskrit", "lb": "Luxembourgish", "my": "Myanmar", "bo": "Tibetan", "tl": "Tagalog",
    "mg": "Malagasy", "as": "Assamese", "tt": "Tatar", "haw": "Hawaiian", "ln": "Lingala",
    "ha": "Hausa", "ba": "Bashkir", "jw": "Javanese", "su": "Sundanese", "yue": "Cantonese",
}  # fmt: skip
