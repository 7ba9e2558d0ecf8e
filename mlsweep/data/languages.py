"""Language codes: ISO 639-1, ISO 639-3 and FLORES-200 `xxx_Script`, normalised to one code.

The canonical code is ISO 639-1 where one exists (the codes of the papers'
tables), else ISO 639-3. Each entry also carries the names some corpora use
as config names (XL-Sum's `english`, `chinese_simplified`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mlsweep.registry import suggest


@dataclass(frozen=True)
class Lang:
    code: str  # canonical
    iso3: str
    flores: str
    xlsum: str = ""  # csebuetnlp/xlsum config name, if XL-Sum has the language


_TABLE = [
    Lang("en", "eng", "eng_Latn", "english"),
    Lang("de", "deu", "deu_Latn"),
    Lang("fr", "fra", "fra_Latn", "french"),
    Lang("es", "spa", "spa_Latn", "spanish"),
    Lang("pt", "por", "por_Latn", "portuguese"),
    Lang("it", "ita", "ita_Latn"),
    Lang("ru", "rus", "rus_Cyrl", "russian"),
    Lang("bg", "bul", "bul_Cyrl"),
    Lang("el", "ell", "ell_Grek"),
    Lang("ar", "arb", "arb_Arab", "arabic"),
    Lang("tr", "tur", "tur_Latn", "turkish"),
    Lang("zh", "zho", "zho_Hans", "chinese_simplified"),
    Lang("zh-Hant", "zht", "zho_Hant", "chinese_traditional"),
    Lang("ja", "jpn", "jpn_Jpan", "japanese"),
    Lang("ko", "kor", "kor_Hang", "korean"),
    Lang("vi", "vie", "vie_Latn", "vietnamese"),
    Lang("th", "tha", "tha_Thai", "thai"),
    Lang("id", "ind", "ind_Latn", "indonesian"),
    Lang("hi", "hin", "hin_Deva", "hindi"),
    Lang("bn", "ben", "ben_Beng", "bengali"),
    Lang("ur", "urd", "urd_Arab", "urdu"),
    Lang("ta", "tam", "tam_Taml", "tamil"),
    Lang("te", "tel", "tel_Telu", "telugu"),
    Lang("mr", "mar", "mar_Deva", "marathi"),
    Lang("gu", "guj", "guj_Gujr", "gujarati"),
    Lang("ne", "npi", "npi_Deva", "nepali"),
    Lang("sw", "swh", "swh_Latn", "swahili"),
    Lang("yo", "yor", "yor_Latn", "yoruba"),
    Lang("ig", "ibo", "ibo_Latn", "igbo"),
    Lang("et", "est", "est_Latn"),
    Lang("ht", "hat", "hat_Latn"),
    Lang("qu", "quy", "quy_Latn"),
    Lang("eu", "eus", "eus_Latn"),
    Lang("my", "mya", "mya_Mymr", "burmese"),
    Lang("nl", "nld", "nld_Latn"),
    Lang("pl", "pol", "pol_Latn"),
    Lang("uk", "ukr", "ukr_Cyrl", "ukrainian"),
    Lang("fa", "pes", "pes_Arab", "persian"),
]
LANGS: dict[str, Lang] = {lang.code: lang for lang in _TABLE}
_ALIASES: dict[str, str] = {}
for _l in _TABLE:
    for _alias in (_l.code, _l.iso3, _l.flores, _l.xlsum):
        if _alias:
            _ALIASES[_alias.lower()] = _l.code
_ALIASES.update({"swa": "sw", "ara": "ar", "cmn": "zh", "zh-hans": "zh", "nep": "ne", "fas": "fa", "que": "qu"})


def lookup(code: str) -> Optional[str]:
    """Canonical code for an ISO 639-1, ISO 639-3 or FLORES (`deu_Latn`) spelling, or None if unknown."""
    key = code.lower().replace("-", "_") if "_" in code else code.lower()
    return _ALIASES.get(key) or _ALIASES.get(code.lower())


def normalize(code: str, field: str = "language", extra: tuple[str, ...] = ()) -> str:
    """Canonical code for `code`; `extra` are further codes the caller knows (a corpus's own)."""
    if code in extra:
        return code
    canonical = lookup(code)
    if canonical is not None:
        return canonical
    known = sorted(set(_ALIASES.values()) | set(extra))
    hint = suggest(code, known + list(_ALIASES), cutoff=0.5)
    raise ValueError(
        f"{field}: unknown language code {code!r}.{hint} Use ISO 639-1 (de), 639-3 (deu) or "
        f"FLORES (deu_Latn); known: {', '.join(known)}"
    )


def canonical(code: str) -> str:
    """The canonical code of a known spelling (`hin_Deva`, `hin` -> `hi`), else `code` as typed.

    Result keys, pass labels and tables use it, so one language is one column
    whatever spelling the config typed; a code the table does not know (a
    corpus's own, a toy language of the tests) stays as it is.
    """
    return lookup(code) or code


def spellings(codes: list[str]) -> list[str]:
    """Every spelling of `codes` (ISO 639-1, 639-3, FLORES), so a did-you-mean finds `deu_Latn` for `deu_Latm`."""
    out = list(codes)
    for code in codes:
        lang = LANGS.get(lookup(code) or "")
        out += [s for s in (lang.iso3, lang.flores) if s] if lang else []
    return list(dict.fromkeys(out))


def same_language(code: str, known: list[str]) -> list[str]:
    """The codes of `known` that name the language `code` names: itself, else those of equal canonical code."""
    if code in known:
        return [code]
    target = lookup(code)
    return [] if target is None else [k for k in known if lookup(k) == target]
