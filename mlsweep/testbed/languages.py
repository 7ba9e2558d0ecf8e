"""The seven synthetic languages of the testbed: identity, share and prompt words.

Each language is a synthetic stand-in named after a real ISO code so that
result tables line up with the calibration-language experiments on real
models (Kurz et al. 2024). None of them is the real language of its code:
`ru` is a synthetic language written in Cyrillic, named `ru` for the table
layout; it is not Russian. Likewise `zh` is written with Han characters, `ar`
with Arabic letters, and `en`, `es`, `de`, `sw` with Latin letters; `en` is a
small controlled English, the only language with real words.

Besides the training-data share, a definition carries the words that the
evaluation prompts need (`right`, `yes`, `no`, `also`, `because`, `so`, and the
language's `name` for itself). They are exactly the forms the corpus uses in
its check sentences (`P, right? Yes, H.`) and causal sentences (`A, so B.` /
`B because A.`), so a prompt built from them looks like training text. The
joining methods below are the single place where punctuation and spacing of
those sentences are defined; the corpus uses them and prompts should too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str
    name: str  # the language's name for itself, for "{name}: {sentence}" prompts
    script: str
    share: float  # fraction of the model-training documents
    order: str  # basic word order, for documentation and reports
    right: str
    yes: str
    no: str
    also: str
    because: str
    so: str
    end: str = "."  # sentence end mark
    comma: str = ", "  # clause separator, including any space after it
    qmark: str = "?"
    space: str = " "  # between words and between sentences ("" for zh)
    because_sep: str = " "  # what precedes the because-word

    def answer(self, relation: str) -> str:
        """The answer word of a check sentence: relation is yes, no or also."""
        return {"yes": self.yes, "no": self.no, "also": self.also}[relation]

    def check(self, premise: str, answer: str, hypothesis: str, end: bool = True) -> str:
        """`P, right? Yes, H.` with this language's punctuation."""
        text = f"{premise}{self.comma}{self.right}{self.qmark}{self.space}{answer}{self.comma}{hypothesis}"
        return text + self.end if end else text

    def so_join(self, cause: str, effect: str, end: bool = True) -> str:
        """`A, so B.`: cause first."""
        text = f"{cause}{self.comma}{self.so}{self.space}{effect}"
        return text + self.end if end else text

    def because_join(self, effect: str, cause: str, end: bool = True) -> str:
        """`B because A.`: effect first."""
        text = f"{effect}{self.because_sep}{self.because}{self.space}{cause}"
        return text + self.end if end else text

    def join_sentences(self, sentences: list[str]) -> str:
        return self.space.join(sentences)


# Share order: the order of the result tables, highest share first.
LANGUAGES: dict[str, Language] = {
    "en": Language(
        code="en",
        name="English",
        script="Latin",
        share=0.35,
        order="SVO",
        right="right",
        yes="yes",
        no="no",
        also="also",
        because="because",
        so="so",
    ),
    # Synthetic language written with Han characters, named `zh` for the table
    # layout; it is not Chinese. Every word is one or two characters of an
    # invented pool; there are no spaces.
    "zh": Language(
        code="zh",
        name="岚禾",
        script="Han",
        share=0.25,
        order="SVO",
        right="圭",
        yes="丞",
        no="彡",
        also="卉",
        because="冏",
        so="乍",
        end="。",
        comma="，",
        qmark="？",
        space="",
        because_sep="，",
    ),
    # Synthetic language in Latin script with acute accents and n-tilde, named
    # `es` for the table layout; it is not Spanish. Close relative of `de`.
    "es": Language(
        code="es",
        name="Lengó",
        script="Latin",
        share=0.15,
        order="SVO",
        right="verdó",
        yes="sé",
        no="nu",
        also="tambó",
        because="purké",
        so="entós",
    ),
    # Synthetic language spelled with Arabic letters (written right to left),
    # named `ar` for the table layout; it is not Arabic.
    "ar": Language(
        code="ar",
        name="قلزي",
        script="Arabic",
        share=0.10,
        order="VSO",
        right="طاب",
        yes="نعو",
        no="لاش",
        also="وكم",
        because="بسو",
        so="فتم",
        comma="، ",
        qmark="؟",
    ),
    # Synthetic language written in Cyrillic, named `ru` for the table layout;
    # it is not Russian.
    "ru": Language(
        code="ru",
        name="Рушен",
        script="Cyrillic",
        share=0.08,
        order="SOV",
        right="вирна",
        yes="дак",
        no="нуте",
        also="тожем",
        because="пушто",
        so="тадо",
    ),
    # Synthetic language in Latin script, named `de` for the table layout; it is
    # not German. Verb-second main clauses, verb-final because-clauses.
    "de": Language(
        code="de",
        name="Tiedsk",
        script="Latin",
        share=0.05,
        order="V2/SOV",
        right="wahro",
        yes="jo",
        no="nee",
        also="auk",
        because="wal",
        so="dan",
    ),
    # Synthetic language in Latin script with noun classes, named `sw` for the
    # table layout; it is not Swahili. The low-resource member of the family.
    "sw": Language(
        code="sw",
        name="Kimbala",
        script="Latin",
        share=0.02,
        order="SVO",
        right="kwelo",
        yes="ndie",
        no="lahu",
        also="piya",
        because="kwasa",
        so="hivo",
    ),
}

SHARES: dict[str, float] = {code: lang.share for code, lang in LANGUAGES.items()}
CODES: tuple[str, ...] = tuple(LANGUAGES)
