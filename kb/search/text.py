"""Text normalisation and the Chinese tokenizer shared by indexing, querying and highlighting.

One analyzer serves the BM25 index, BM25 queries and the snippet highlighter, so index time and query
time can never disagree. Steps, in order:

1. **Normalise** (:meth:`TextAnalyzer.normalize`): Unicode NFKC (full-width letters, digits and punctuation
   become half-width), case folding, then Traditional to Simplified Chinese with OpenCC ``t2s``, then a few
   variant characters OpenCC leaves alone (帐号 -> 账号). The same function prepares the embedding input.
   Not ``tw2sp``: its Taiwan-to-mainland phrase table rewrites valid simplified text (文件 -> 文档,
   程序 -> 进程: 600 and 481 changes in 150 bundled articles); regional terms (印表机 / 打印机) are synonyms.
2. **Protect identifiers**: error codes (``ora-01555``, ``0x80070005``), IPv4/IPv6 addresses, URLs, file
   paths, versions (``3.6.3``), asset ids (``srv-bj-db01``), command options (``--force``) and every
   user-dictionary entry that holds punctuation or spaces (``wi-fi6``, ``active directory``) are cut
   out before jieba sees the text, emitted whole, and also as their alphanumeric parts for recall.
   jieba cannot do this itself: it splits text into blocks with a character-class regex before it
   consults its dictionary (fxsjy/jieba#749, #300).
3. **Segment** the rest with jieba's search mode (``Tokenizer.tokenize(mode="search")``), which adds the
   sub-words of long words (数据库 -> 数据, 数据库) for recall.
4. **Filter**: drop white space and punctuation; drop a short list of Chinese particles; never drop
   English words or one-letter tokens (``it``, ``c`` of C盘, ``on``); no stemming. jieba's bundled
   ``ChineseAnalyzer`` does all of those wrongly for an IT knowledge base (see cases BL-08).

Offsets of :class:`Token` are character offsets into the *original* text, so highlights land on what
the user wrote.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from kb.config import DATA_DIR
from kb.errors import InvalidInputError

logger = logging.getLogger(__name__)

BUNDLED_USER_DICT = DATA_DIR / "userdict.txt"

#: Segment queries in jieba's search mode (sub-words too) or precise mode.
QUERY_SEARCH_MODE = False

#: Texts whose tokens :meth:`TextAnalyzer.tokens` remembers (a chunk's tokens take ~10-30 kB).
TOKEN_CACHE_SIZE = 4096

#: Bump when analysis changes in a way that changes index terms; stored in the index manifest.
ANALYZER_VERSION = 2

#: Particles that carry no meaning for retrieval, dropped at index and query time.
STOPWORDS = frozenset("的地得了着过吗呢吧啊呀哦嘛么之与及其和或被把将")  # one character each

#: Words that only frame a question; dropped from queries (not from documents).
QUERY_FILLERS = frozenset(
    [
        "请问",
        "请",
        "问下",
        "问一下",
        "一下",
        "怎么",
        "怎么办",
        "怎么样",
        "怎样",
        "如何",
        "咋",
        "咋办",
        "咋回事",
        "怎么回事",
        "为啥",
        "啥",
        "什么",
        "是不是",
        "能不能",
        "可不可以",
        "可以",
        "吗",
        "呢",
        "啊",
        "呀",
        "吧",
        "哦",
        "嘛",
        "我",
        "我们",
        "你",
        "你们",
        "您",
        "帮忙",
        "帮我",
        "麻烦",
        "谢谢",
        "是",
        "有",
        "在",
        "就",
        "都",
        "也",
        "还",
        "又",
        "这个",
        "那个",
        "这",
        "那",
        "一个",
        "出现",
        "遇到",
        "发生",
        "了",
        "的",
    ]
)

# OpenCC keeps both of these variant pairs as "simplified"; desk users type the right-hand forms.
_VARIANTS = str.maketrans({"帐": "账"})

_WORD_CHAR = re.compile(r"[\w]", re.UNICODE)
_QUOTED = re.compile(r'"([^"]+)"')
ALNUM_PART = re.compile(r"[a-z0-9]+")

# Identifier patterns, on normalised (lower-case, half-width) text. Order matters: longest forms first.
_IDENTIFIER_PATTERNS = [
    r"(?:https?|ftp|smb|ldaps?)://[^\s<>\"'，。；、）)\]]+",  # URLs
    r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?:/[\w.\-/]*)?(?![\w.])",  # IPv4[:port][/path]
    r"(?<![\w:])(?:[0-9a-f]{1,4}:){2,7}[0-9a-f]{0,4}(?![\w:])",  # IPv6 (loose)
    r"(?<![\w/])(?:[a-z]:)?(?:[/\\][\w.\-]+){2,}[/\\]?",  # file paths /etc/resolv.conf, c:\windows\x
    r"(?<![\w-])--?[a-z][a-z0-9\-]*(?:=[\w.\-]+)?",  # command options --force, -n
    r"\b0x[0-9a-f]+\b",  # hex error codes
    r"\b[a-z0-9]+(?:[\-_.][a-z0-9]+)+\b",  # ora-01555, 802.1x, srv-bj-db01, 3.6.3, kube-proxy
]

# Identifiers found inside a longer one (an IP inside a URL, a file name inside a path).
_INNER_IDENTIFIER = re.compile(r"(?<![\w.\-])[a-z0-9]+(?:[\-_.][a-z0-9]+)+(?![\w\-])")


class Token(NamedTuple):
    """One index/query term. A named tuple of atoms, so the remembered tokens of thousands of chunks are no work
    for Python's cycle collector (as dataclass instances they made its full passes take 30-60 ms).

    Attributes:
        text: the normalised term (lower-case, simplified Chinese; inner spaces become ``_``).
        start: start offset in the original text, characters.
        end: end offset (exclusive) in the original text, characters.
        identifier: True for a protected identifier emitted whole (error code, IP, path, ...).
        part: True for an alphanumeric part of an identifier (``3`` and ``6`` of ``3.6.3``), emitted for recall.
    """

    text: str
    start: int
    end: int
    identifier: bool = False
    part: bool = False


@dataclass(frozen=True, slots=True)
class QueryAnalysis:
    """What a query became: normalised text, its BM25 terms, and its identifiers.

    ``parts`` are the terms that occur in the query only as alphanumeric parts of an identifier (``3`` and
    ``6`` of ``3.6.3``): a fallback for when the index does not hold the whole identifier (see
    :func:`kb.search.keywords.keyword_terms`).
    """

    normalized: str
    terms: tuple[str, ...]
    identifiers: tuple[str, ...]
    has_word_chars: bool
    phrases: tuple[tuple[str, ...], ...] = ()
    parts: tuple[str, ...] = ()


class TextAnalyzer:
    """Normaliser and tokenizer. Thread-safe after construction; build one per process and share it.

    Args:
        user_dicts: jieba user dictionary files (``word [freq] [tag]`` a line; a word may hold spaces or
            punctuation, such entries are matched as protected phrases). The bundled IT dictionary is
            always loaded first.

    Raises:
        kb.errors.InvalidInputError: a user dictionary file cannot be read.
    """

    def __init__(self, user_dicts: Iterable[Path] = ()) -> None:
        import jieba
        import opencc

        jieba.setLogLevel(logging.WARNING)
        self._cached_norm = functools.lru_cache(maxsize=TOKEN_CACHE_SIZE)(self._normalize)
        self._opencc = opencc.OpenCC("t2s")
        self._jieba = jieba.Tokenizer()
        phrases: list[str] = []
        digest = hashlib.sha256()
        for path in [BUNDLED_USER_DICT, *user_dicts]:
            try:
                lines = Path(path).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInputError(f"Cannot read user dictionary {path}: {exc}") from exc
            for line in lines:
                entry = self._parse_dict_line(line)
                if entry is None:
                    continue
                word, freq = entry
                digest.update(f"{word}\t{freq}\n".encode())
                norm = self.normalize(word)
                if re.fullmatch(r"[\w]+", norm):
                    self._jieba.add_word(norm, freq=freq)
                else:
                    phrases.append(norm)
        self.dictionary_digest = digest.hexdigest()[:16]
        self._jieba.initialize()
        self._lock = threading.Lock()
        patterns = list(_IDENTIFIER_PATTERNS)
        if phrases:
            alternatives = "|".join(re.escape(p) for p in sorted(set(phrases), key=len, reverse=True))
            patterns.insert(0, rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])")
        self._protected = re.compile("|".join(f"(?:{p})" for p in patterns))
        self._cached_tokens = functools.lru_cache(maxsize=TOKEN_CACHE_SIZE)(self._tokens)

    @staticmethod
    def _parse_dict_line(line: str) -> tuple[str, int | None] | None:
        """Parse one dictionary line into ``(word, freq)``.

        Formats: ``word<TAB>freq<TAB>tag`` (any word, spaces allowed); jieba's ``word freq tag`` when the
        word is not ASCII (Chinese terms); otherwise the whole line is the word (``Windows Server 2019``).
        """
        line = line.strip()
        if not line or line.startswith("#"):
            return None
        if "\t" in line:
            fields = [f.strip() for f in line.split("\t")]
            freq = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
            return fields[0], freq
        parts = line.split()
        if (
            len(parts) in (2, 3)
            and parts[1].isdigit()
            and (len(parts) == 2 or parts[2].isalpha())
            and not parts[0].isascii()
        ):
            return parts[0], int(parts[1])
        return " ".join(parts), None

    # -- normalisation -------------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        """NFKC + case folding + Traditional -> Simplified (OpenCC t2s) + variant unification."""
        return self.normalize_with_offsets(text)[0]

    def normalize_with_offsets(self, text: str) -> tuple[str, Sequence[int]]:
        """Normalised text (see :meth:`normalize`) and, for each of its characters, the offset of its source
        character in ``text`` (a sequence as long as the normalised text). Remembered like :meth:`tokens`."""
        norm, origin = self._cached_norm(text)
        return norm, range(len(text)) if origin is None else origin

    def _normalize(self, text: str) -> tuple[str, tuple[int, ...] | None]:  # None: offsets unchanged
        folded = unicodedata.normalize("NFKC", text).lower()
        identity = len(folded) == len(text)
        origin: list[int] = []
        if not identity:  # NFKC changed lengths (ligatures, compatibility forms): map character by character.
            pieces: list[str] = []
            for i, ch in enumerate(text):
                n = unicodedata.normalize("NFKC", ch).lower()
                pieces.append(n)
                origin.extend([i] * len(n))
            folded = "".join(pieces)
        converted = self._opencc.convert(folded) if _has_cjk(folded) else folded
        if len(converted) != len(folded):  # phrase conversion changed length: convert per character
            converted = "".join(self._opencc.convert(ch) for ch in folded)
            if len(converted) != len(folded):
                converted = folded
        return converted.translate(_VARIANTS), None if identity else tuple(origin)

    # -- tokenisation --------------------------------------------------------------------------

    def tokens(self, text: str, *, search_mode: bool = True, remember: bool = True) -> tuple[Token, ...]:
        """All index terms of ``text`` in order, with offsets into ``text``.

        ``search_mode`` (index side) adds the sub-words of long words; queries use jieba's precise mode, whose
        whole words the index holds too.
        Never yields an empty token, a white-space token or a punctuation-only token. The last
        :data:`TOKEN_CACHE_SIZE` texts are remembered (coverage re-reads the same chunks per query), unless
        ``remember`` is False (the snippet highlighter keeps the tokens of small blocks of text itself): then
        neither its tokens nor its normalised form are remembered.
        """
        return self._cached_tokens(text, search_mode) if remember else self._tokens(text, search_mode, False)

    def _tokens(self, text: str, search_mode: bool, remember: bool = True) -> tuple[Token, ...]:
        if remember:
            norm, origin = self.normalize_with_offsets(text)
        else:  # nor its normalised form: the blocks of snippets would push whole chunks out of that cache
            norm, offsets = self._normalize(text)
            origin = range(len(text)) if offsets is None else offsets
        out: list[Token] = []
        pos = 0
        for match in self._protected.finditer(norm):
            self._segment(norm, pos, match.start(), origin, out, search_mode)
            ident = match.group(0).rstrip(".:")
            start, end = match.start(), match.start() + len(ident)
            out.append(Token(ident.replace(" ", "_"), origin[start], origin[end - 1] + 1, True))
            for inner in _INNER_IDENTIFIER.finditer(ident):  # the host of a URL, the file of a path ...
                if inner.group(0) != ident:
                    s, e = start + inner.start(), start + inner.end()
                    out.append(Token(inner.group(0), origin[s], origin[e - 1] + 1, True))
            for part in ALNUM_PART.finditer(ident):
                if part.group(0) != ident:
                    s, e = start + part.start(), start + part.end()
                    out.append(Token(part.group(0), origin[s], origin[e - 1] + 1, part=True))
            pos = end
        self._segment(norm, pos, len(norm), origin, out, search_mode)
        return tuple(out)

    def _segment(
        self, norm: str, start: int, end: int, origin: Sequence[int], out: list[Token], search_mode: bool = True
    ) -> None:
        if start >= end:
            return
        piece = norm[start:end]
        with self._lock:  # jieba.Tokenizer's lazy state is not guarded
            pieces = list(self._jieba.tokenize(piece, mode="search" if search_mode else "default"))
        for word, s, e in pieces:
            word = word.strip()
            if not word or not _WORD_CHAR.search(word) or word in STOPWORDS:
                continue
            if "_" in word and not word.strip("_"):
                continue
            out.append(Token(word, origin[start + s], origin[start + e - 1] + 1))

    def terms(self, text: str) -> list[str]:
        """Index terms of ``text`` (see :meth:`tokens`), as strings."""
        return [t.text for t in self.tokens(text)]

    def analyze_query(self, query: str) -> QueryAnalysis:
        """Terms for the BM25 leg of a query: index terms minus question-framing filler words.

        Text in ASCII double quotes is also a phrase that results must contain. Chinese quotes (“”) are not
        search syntax: tickets and titles quote error messages in them (“没有可用的许可证”) as plain text.
        """
        tokens = self.tokens(query, search_mode=QUERY_SEARCH_MODE)
        terms = [t.text for t in tokens if t.identifier or t.text not in QUERY_FILLERS]
        phrases = []
        for match in _QUOTED.finditer(query):
            phrase = self._phrase_terms(match.group(1))
            if phrase:
                phrases.append(phrase)
        standalone = {t.text for t in tokens if not t.part}
        return QueryAnalysis(
            normalized=self.normalize(query),
            terms=tuple(dict.fromkeys(terms)),
            identifiers=tuple(dict.fromkeys(t.text for t in tokens if t.identifier)),
            has_word_chars=bool(_WORD_CHAR.search(query)),
            phrases=tuple(phrases),
            parts=tuple(dict.fromkeys(t.text for t in tokens if t.part and t.text not in standalone)),
        )

    def _phrase_terms(self, text: str) -> tuple[str, ...]:
        """Terms of a phrase in order, without the sub-words search mode adds inside longer words."""
        kept: list[Token] = []
        for token in self.tokens(text):
            if kept and token.start >= kept[-1].start and token.end <= kept[-1].end:
                continue  # a fragment of the previous identifier
            while kept and kept[-1].start >= token.start and kept[-1].end <= token.end:
                kept.pop()  # a sub-word of this longer word
            kept.append(token)
        return tuple(t.text for t in kept)

    def fingerprint(self) -> dict[str, object]:
        """What the index manifest records about analysis, to detect a mismatch."""
        import jieba

        return {
            "analyzer_version": ANALYZER_VERSION,
            "jieba": jieba.__version__,
            "user_dict": self.dictionary_digest,
        }


def _has_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)
