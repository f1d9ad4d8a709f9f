"""Source pieces of the demo corpus: the public-domain scores shipped inside the ``music21`` package.

The demo corpus is rendered from the ``music21`` corpus (folk-tune collections in ABC notation, Bach
chorales, Palestrina masses, trecento polyphony, Monteverdi madrigals and Classical string quartets).
This module knows *what* each source is; it does not render anything.

* :data:`COLLECTIONS` lists the collections with their documented catalogue facts: region, text
  language, date of publication or composition, genre labels, typical instruments and the share of
  the corpus they receive. Dates are those of the printed collections or of the works, as commonly
  cited; where no reliable date is known the collection gets no decade tag.
* :func:`catalogue` lists every piece of a collection cheaply, by scanning the files' headers as
  text (ABC ``X:``/``T:``/``R:``/``O:``/``S:`` fields, Humdrum ``!!!`` records, file names); no
  score is parsed.
* :func:`parse_piece` parses one piece with ``music21`` (the slow step, done once per piece).

Length: about 250 of this module's ~650 lines are the declarative :data:`COLLECTIONS` table (data, read top to
bottom, one entry per collection); the code that reads each collection's headers sits beside the facts it
completes.

Artists (:func:`assign_artists`): a composer or a collection is far too large a unit for an
artist-level split (every tag of a collection would land in one split, and a 70/15/15 split needs
many artists per tag), so the pieces chosen from a collection are bound, in their (seeded, random)
selection order, into *volumes* of about :data:`TRACKS_PER_ARTIST` tracks, and each volume is one
artist: ``"O'Neill's Music of Ireland (1850), vol. 3"``, ``"L. van Beethoven, vol. 2"`` (Classical
movements are bound per composer). All renders of one piece share its artist, so no piece is ever
split across train and test.

Left out on purpose: the Beethoven quartets stored whole in one file (20–80 s to parse each, for a
15 s excerpt; their per-movement files are used instead); the ``nottingham-dataset`` folder of this
music21 release (only two tunes); the Josquin chansons (stored one voice per ABC tune, under the GPL).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # music21 is imported only where a score is parsed (it is slow to import).
    from music21.stream import Score


@dataclass(frozen=True)
class Collection:
    """A source collection of the music21 corpus and its documented catalogue facts.

    Attributes:
        key: short identifier, e.g. ``"oneills"``.
        name: catalogue name written into descriptions, e.g. ``"O'Neill's Music of Ireland (1850)"``.
        patterns: glob patterns of its files, relative to the music21 corpus folder.
        artist: base artist name; volumes append ``", vol. N"`` (the quartets use the composer).
        genres: genre tags every piece of the collection carries.
        location: location tag, a place name (``"ireland"``, ``"usa"``), or None when it comes per
            piece (Essen ``O:`` field, composer). Place names keep location tags distinct from
            language tags (``"germany"`` vs ``"german"``).
        language: text language tag; ``"instrumental"`` for dance tunes; None when decided per piece.
        year: documented year of publication/composition, or None (no decade tag).
        sacred: True for sacred vocal music (gives the ``worship`` activity).
        instruments: instrument tags that typically play this music (drawn more often).
        pace: (low, high) range of note onsets per second drawn for renders.
        renders: renders (tracks) made from each piece.
        share: relative share of the corpus' tracks.
        about: one honest sentence about the collection, used in the text corpus.
    """

    key: str
    name: str
    patterns: tuple[str, ...]
    artist: str
    genres: tuple[str, ...]
    location: str | None
    language: str | None
    year: int | None
    sacred: bool
    instruments: tuple[str, ...]
    pace: tuple[float, float]
    renders: int
    share: float
    about: str


@dataclass(frozen=True)
class Piece:
    """One source piece (one tune or one movement) with its catalogue metadata.

    Attributes:
        key: unique, stable identifier, e.g. ``"oneills1850/0001-0050.abc#3"``.
        collection: the :attr:`Collection.key`.
        path: file path relative to the music21 corpus folder.
        title: catalogue title.
        group: the unit the piece belongs to (ABC file, mass, opus, madrigal book, BWV number).
        abc: for ABC sources, the text of this one tune (file header included); None otherwise.
        rhythm: the ABC ``R:`` field or Humdrum genre, lowercased ('' when absent).
        origin: the ABC ``O:`` field (region), '' when absent.
        source_note: the ABC ``S:`` field (printed source), '' when absent.
        section: the ``% ----`` comment heading the tune sits under in its file ('' when none).
        size: file size in bytes (a proxy for parsing cost, used to schedule work).
    """

    key: str
    collection: str
    path: str
    title: str
    group: str
    abc: str | None = None
    rhythm: str = ""
    origin: str = ""
    source_note: str = ""
    section: str = ""
    size: int = 0


# Instruments shared by several collections (tags; render.INSTRUMENTS maps them to GM programs).
_FIDDLE_BAND = ("violin", "flute", "accordion", "harp", "guitar")
_CHURCH = ("organ", "choir", "strings", "brass")

COLLECTIONS: tuple[Collection, ...] = (
    Collection(
        key="oneills",
        name="O'Neill's Music of Ireland (1850)",
        patterns=("oneills1850/*.abc",),
        artist="O'Neill's Music of Ireland (1850)",
        genres=("folk", "irish folk", "celtic"),
        location="ireland",
        language="instrumental",
        year=1903,
        sacred=False,
        instruments=(*_FIDDLE_BAND, "bagpipes", "recorder"),
        pace=(3.0, 7.5),
        renders=3,
        share=0.13,
        about="O'Neill's Music of Ireland, published in Chicago in 1903 by Francis O'Neill, gathers 1850 "
        "Irish airs, jigs, reels and hornpipes collected from Irish musicians.",
    ),
    Collection(
        key="ryans",
        name="Ryan's Mammoth Collection (1883)",
        patterns=("ryansMammoth/*.abc",),
        artist="Ryan's Mammoth Collection",
        genres=("folk", "fiddle tune", "american folk"),
        location="usa",
        language="instrumental",
        year=1883,
        sacred=False,
        instruments=("violin", "banjo", "guitar", "harmonica", "piano"),
        pace=(3.5, 8.0),
        renders=3,
        share=0.11,
        about="Ryan's Mammoth Collection, published in Boston in 1883, holds over a thousand American "
        "fiddle tunes: reels, jigs, hornpipes, clogs and strathspeys.",
    ),
    Collection(
        key="aird",
        name="Aird's Selection of Scotch, English, Irish and Foreign Airs",
        patterns=("airdsAirs/*.abc",),
        artist="Aird's Airs",
        genres=("folk", "scottish folk", "celtic"),
        location="scotland",
        language="instrumental",
        year=1782,
        sacred=False,
        instruments=("violin", "flute", "bagpipes", "harp", "accordion"),
        pace=(2.5, 7.0),
        renders=3,
        share=0.09,
        about="James Aird's Selection of Scotch, English, Irish and Foreign Airs, printed in Glasgow from "
        "1778 in six volumes, was written for the fife, violin or German flute.",
    ),
    Collection(
        key="northumbrian",
        name="Northumbrian Minstrelsy (1882)",
        patterns=("miscFolk/northumbrianminstrelsyopus.abc",),
        artist="Bruce & Stokoe",
        genres=("folk", "english folk"),
        location="england",
        language=None,
        year=1882,
        sacred=False,
        instruments=("bagpipes", "violin", "flute", "accordion", "guitar"),
        pace=(2.0, 6.0),
        renders=3,
        share=0.05,
        about="Northumbrian Minstrelsy by Bruce and Stokoe, 1882, collects ballads, song tunes and "
        "small-pipe tunes of north-east England.",
    ),
    Collection(
        key="fife",
        name="Colonial and Civil War American Fife Music",
        patterns=("miscFolk/americanfifeopus.abc",),
        artist="American Fife Tunebooks",
        genres=("folk", "american folk"),
        location="usa",
        language="instrumental",
        year=None,
        sacred=False,
        instruments=("flute", "recorder", "brass", "violin"),
        pace=(3.0, 7.0),
        renders=2,
        share=0.04,
        about="Fife tunes from American bandsmen's tunebooks of the colonial and civil war periods: "
        "marches, quicksteps and dance tunes.",
    ),
    Collection(
        key="essen_german",
        name="Essen Folksong Collection: German songs",
        patterns=(
            "essenFolksong/altdeu*.abc",
            "essenFolksong/boehme*.abc",
            "essenFolksong/erk*.abc",
            "essenFolksong/zuccal0.abc",
            "essenFolksong/fink0.abc",
            "essenFolksong/kinder0.abc",
            "essenFolksong/ballad*.abc",
            "essenFolksong/dva0.abc",
        ),
        artist="Essen Folksong Collection (German)",
        genres=("folk", "german folk"),
        location=None,
        language="german",
        year=None,
        sacred=False,
        instruments=("piano", "guitar", "accordion", "clarinet", "choir", "flute"),
        pace=(1.5, 4.5),
        renders=2,
        share=0.14,
        about="The Essen Folksong Collection encodes thousands of German folk song melodies from printed "
        "song books of the nineteenth and twentieth centuries: love songs, ballads, hymns and "
        "children's songs.",
    ),
    Collection(
        key="essen_lorraine",
        name="Essen Folksong Collection: Lorraine (Pinck, Verklingende Weisen)",
        patterns=("essenFolksong/lot.abc",),
        artist="L. Pinck, Verklingende Weisen",
        genres=("folk", "german folk"),
        location="france",
        language="german",
        year=None,
        sacred=False,
        instruments=("piano", "guitar", "accordion", "choir", "flute"),
        pace=(1.5, 4.5),
        renders=2,
        share=0.04,
        about="Louis Pinck's Verklingende Weisen (Metz and Kassel, 1926-1939) preserves the German-language "
        "folk songs of Lorraine in France.",
    ),
    Collection(
        key="essen_lux",
        name="Essen Folksong Collection: Luxembourg",
        patterns=("essenFolksong/lux.abc",),
        artist="Luxembourg song books",
        genres=("folk",),
        location="luxembourg",
        language=None,
        year=None,
        sacred=False,
        instruments=("piano", "guitar", "accordion", "choir", "flute"),
        pace=(1.5, 4.5),
        renders=2,
        share=0.04,
        about="Folk songs from Luxembourg song books of the 1920s and 1930s, such as Singendes Volk "
        "(Esch-Alzette, 1937).",
    ),
    Collection(
        key="essen_han",
        name="Essen Folksong Collection: Han Chinese songs",
        patterns=("essenFolksong/han1.abc", "essenFolksong/han2.abc"),
        artist="Han Chinese folk songs",
        genres=("folk", "chinese folk"),
        location="china",
        language="chinese",
        year=None,
        sacred=False,
        instruments=("flute", "pan flute", "harp", "strings", "celesta"),
        pace=(1.5, 5.0),
        renders=2,
        share=0.10,
        about="Han Chinese folk songs from the Essen Folksong Collection: xiaodiao ditties, shange mountain "
        "songs and haozi work songs from many provinces of China.",
    ),
    Collection(
        key="bach",
        name="J. S. Bach: Four-part chorales",
        patterns=("bach/bwv*.mxl",),
        artist="J. S. Bach",
        genres=("classical", "baroque", "chorale", "sacred", "choral"),
        location="germany",
        language="german",
        year=1730,
        sacred=True,
        instruments=(*_CHURCH, "harpsichord"),
        pace=(1.2, 3.5),
        renders=3,
        share=0.10,
        about="Johann Sebastian Bach's four-part chorales, harmonisations of Lutheran hymns written in "
        "Leipzig for his cantatas and passions in the 1720s and 1730s.",
    ),
    Collection(
        key="palestrina",
        name="G. P. da Palestrina: Masses",
        patterns=("palestrina/*.krn",),
        artist="G. P. da Palestrina",
        genres=("classical", "renaissance", "early music", "mass", "sacred", "polyphony", "choral"),
        location="italy",
        language="latin",
        year=1570,
        sacred=True,
        instruments=("choir", "organ", "strings"),
        pace=(1.0, 3.5),
        renders=4,
        share=0.08,
        about="Giovanni Pierluigi da Palestrina's masses, published in Rome between 1554 and 1601, are "
        "models of Renaissance Latin polyphony.",
    ),
    Collection(
        key="trecento",
        name="Polyphonic Music of the Fourteenth Century (trecento)",
        patterns=("trecento/*.xml",),
        artist="Trecento polyphony",
        genres=("early music", "medieval", "polyphony"),
        location="italy",
        language=None,
        year=1380,
        sacred=False,
        instruments=("choir", "recorder", "harp", "organ", "strings"),
        pace=(1.5, 4.0),
        renders=5,
        share=0.05,
        about="Fourteenth-century Italian polyphony edited in Polyphonic Music of the Fourteenth Century: "
        "Latin mass movements and motets, Italian madrigals and ballate.",
    ),
    Collection(
        key="monteverdi",
        name="C. Monteverdi: Madrigals, Books 3-5",
        patterns=("monteverdi/madrigal.*.mxl",),
        artist="C. Monteverdi",
        genres=("classical", "renaissance", "early music", "madrigal", "choral"),
        location="italy",
        language="italian",
        year=None,
        sacred=False,
        instruments=("choir", "harpsichord", "strings", "guitar"),
        pace=(1.5, 4.5),
        renders=5,
        share=0.05,
        about="Claudio Monteverdi's five-voice Italian madrigals, Books 3 (1592), 4 (1603) and 5 (1605).",
    ),
    Collection(
        key="quartets",
        name="Classical string quartets and sonatas",
        patterns=("mozart/*/*.mxl", "haydn/*/*.mxl", "beethoven/*/*.mxl"),
        artist="",
        genres=("classical", "chamber music"),
        location=None,
        language="instrumental",
        year=None,
        sacred=False,
        instruments=("strings", "piano", "harpsichord", "violin"),
        pace=(2.0, 7.0),
        renders=8,
        share=0.06,
        about="String quartets and sonatas of the Viennese Classical era by Haydn, Mozart and Beethoven.",
    ),
)
"""Every collection used by the demo corpus, in catalogue order."""

COLLECTION_BY_KEY: dict[str, Collection] = {c.key: c for c in COLLECTIONS}

# Classical works: composer, location, year of composition (as commonly cited).
_QUARTET_FACTS: dict[str, tuple[str, str, int]] = {
    "mozart/k80": ("W. A. Mozart", "austria", 1770),
    "mozart/k155": ("W. A. Mozart", "austria", 1772),
    "mozart/k156": ("W. A. Mozart", "austria", 1772),
    "mozart/k458": ("W. A. Mozart", "austria", 1784),
    "mozart/k545": ("W. A. Mozart", "austria", 1788),
    "haydn/opus1no1": ("J. Haydn", "austria", 1762),
    "haydn/opus74no1": ("J. Haydn", "austria", 1793),
    "beethoven/opus18no1": ("L. van Beethoven", "germany", 1800),
    "beethoven/opus59no1": ("L. van Beethoven", "germany", 1806),
    "beethoven/opus59no2": ("L. van Beethoven", "germany", 1806),
    "beethoven/opus59no3": ("L. van Beethoven", "germany", 1806),
}

# Monteverdi's madrigal books and their publication years.
_MONTEVERDI_BOOK_YEARS: dict[str, int] = {"3": 1592, "4": 1603, "5": 1605}

# Aird's volumes: 1-5 printed 1778-1797, vol. 6 about 1803.
_AIRD_BOOK6_YEAR = 1803

# PMFC volumes of the trecento corpus whose pieces are Latin (mass movements and motets); the
# others (vol. 4: Landini's ballate, vol. 6: madrigals and cacce) set Italian texts.
_TRECENTO_LATIN_VOLUMES = frozenset({"01", "12", "13", "23", "24", "Fava"})

# Older copies kept next to their corrected versions in the corpus (e.g. ``madrigal.3.1_old.mxl``).
_SUPERSEDED_SUFFIXES = ("_old", "_bak")

_YEAR_PATTERN = re.compile(r"\b(1[5-9]\d\d)\b")


def corpus_root() -> Path:
    """The folder of the music21 corpus inside the installed package (found without importing it)."""
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("music21 is not installed; the demo corpus is rendered from its corpus")
    return Path(next(iter(spec.submodule_search_locations))) / "corpus"


def _pmfc_volume(path: str) -> str:
    """The PMFC edition volume of a trecento file (``"trecento/PMFC_12_3-Gloria.xml"`` → ``"12"``)."""
    found = re.search(r"PMFC_(\d+)", path)
    return found[1] if found else Path(path).stem.split("_")[0]


def piece_year(piece: Piece, collection: Collection) -> int | None:
    """The documented year of a piece: the work's, the printed source's (``S:`` field), or the collection's.

    Han Chinese ``S:`` fields cite a 1991 article about the songs, not a date of the songs, so they
    are ignored.
    """
    if collection.key == "quartets":
        return _QUARTET_FACTS[piece.group][2]
    if collection.key == "monteverdi":
        return _MONTEVERDI_BOOK_YEARS.get(piece.group)
    if collection.key == "aird" and piece.group == "book6":
        return _AIRD_BOOK6_YEAR
    if collection.key in ("essen_lorraine", "essen_lux"):
        found = _YEAR_PATTERN.findall(piece.source_note)
        return int(found[-1]) if found else None
    return collection.year


def piece_location(piece: Piece, collection: Collection) -> str | None:
    """The location tag: the collection's, the composer's (quartets), or the Essen ``O:`` region."""
    if collection.location is not None:
        return collection.location
    if collection.key == "quartets":
        return _QUARTET_FACTS[piece.group][1]
    origin = piece.origin.lower()
    if "deutschland" in origin:
        return "germany"
    if "niederlande" in origin or "flaemisch" in origin:
        return "netherlands"
    return None


def piece_language(piece: Piece, collection: Collection) -> str | None:
    """The text-language tag of a piece (``"instrumental"`` for dance tunes), or None when unknown.

    Trecento pieces are Latin in the sacred PMFC volumes and Italian in the secular ones; the
    Northumbrian Minstrelsy's song tunes are English songs and its pipe tunes instrumental.
    """
    if collection.language is not None:
        return collection.language
    if collection.key == "trecento":
        return "latin" if _pmfc_volume(piece.path) in _TRECENTO_LATIN_VOLUMES else "italian"
    if collection.key == "northumbrian":
        return "english" if "song" in piece.section.lower() else "instrumental"
    return None


def catalogue(collection: Collection, root: Path | None = None) -> list[Piece]:
    """List every piece of ``collection`` from its files' headers.

    Args:
        collection: one of :data:`COLLECTIONS`.
        root: the music21 corpus folder (default :func:`corpus_root`).

    Returns:
        The pieces in a stable order (files sorted by name, tunes in file order).
    """
    root = corpus_root() if root is None else root
    files = sorted(
        {p for pattern in collection.patterns for p in root.glob(pattern) if not p.stem.endswith(_SUPERSEDED_SUFFIXES)}
    )
    pieces: list[Piece] = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".abc":
            pieces.extend(_abc_pieces(collection, path, rel))
        elif path.suffix == ".krn":
            pieces.append(_humdrum_piece(collection, path, rel))
        else:
            pieces.append(_file_piece(collection, path, rel))
    return pieces


TRACKS_PER_ARTIST = 6
"""Target tracks per artist volume (see :func:`assign_artists`)."""


def artist_base(piece: Piece) -> str:
    """The name a piece's volumes are called after: the composer for the quartets, else the collection's."""
    if piece.collection == "quartets":
        return _QUARTET_FACTS[piece.group][0]
    return COLLECTION_BY_KEY[piece.collection].artist


def assign_artists(pieces: list[Piece]) -> dict[str, str]:
    """Bind pieces into artist volumes: piece key → artist.

    The pieces sharing an :func:`artist_base` are taken in the given order (the build's seeded selection
    order) and bound ``max(1, round(TRACKS_PER_ARTIST / renders))`` at a time into volumes
    ``"<base>, vol. 1"``, ``"<base>, vol. 2"``, …
    """
    artists: dict[str, str] = {}
    seen: dict[str, int] = {}
    for piece in pieces:
        base = artist_base(piece)
        per_volume = max(1, round(TRACKS_PER_ARTIST / COLLECTION_BY_KEY[piece.collection].renders))
        index = seen.get(base, 0)
        seen[base] = index + 1
        artists[piece.key] = f"{base}, vol. {index // per_volume + 1}"
    return artists


def _opus_label(group: str) -> str:
    """``"beethoven/opus59no1"`` → ``"op. 59 no. 1"``; ``"mozart/k458"`` → ``"K. 458"``."""
    work = group.split("/")[1]
    if work.startswith("k"):
        return f"K. {work[1:]}"
    return re.sub(r"opus(\d+)(?:no(\d+))?", lambda m: f"op. {m[1]}" + (f" no. {m[2]}" if m[2] else ""), work)


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_ABC_FIELD = re.compile(r"^([A-Za-z]):\s*(.*?)\s*\]?\s*$")


def _abc_pieces(collection: Collection, path: Path, rel: str) -> list[Piece]:
    """Split an ABC file into tunes; keep the file header (default fields) with every tune."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # the Essen files are Latin-1
        text = raw.decode("latin-1")
    blocks = re.split(r"\n(?=X:)", text)
    header_lines = [ln for ln in blocks[0].splitlines() if _ABC_FIELD.match(ln) and not ln.startswith("X:")]
    header = "\n".join(header_lines)
    size = path.stat().st_size // max(len(blocks) - 1, 1)
    section = ""
    pieces = []
    for block in blocks:
        # A "% ---- Song tunes ----" comment at the end of a block heads the tunes that follow it.
        next_section = _last_section(block) or section
        if not block.startswith("X:"):
            section = next_section
            continue
        fields: dict[str, str] = {}
        for line in block.splitlines():
            match = _ABC_FIELD.match(line)
            if match and match[1] not in fields:
                fields[match[1]] = _CONTROL_CHARACTERS.sub("", match[2])
        number = fields.get("X", "").strip()
        title = _clean_title(fields.get("T", "")) or f"{path.stem} {number}"
        pieces.append(
            Piece(
                key=f"{rel}#{number}",
                collection=collection.key,
                path=rel,
                title=title,
                group=path.stem,
                abc=(header + "\n" + block).strip() + "\n",
                rhythm=fields.get("R", "").lower(),
                origin=fields.get("O", ""),
                source_note=fields.get("S", ""),
                section=section,
                size=size,
            )
        )
        section = next_section
    return pieces


def _clean_title(title: str) -> str:
    """Drop page references and separators from an ABC title.

    ``"Neujahrslied, (Band 1), S. 13"`` → ``"Neujahrslied"``.
    """
    title = re.sub(r"\s*--\s*", " ", title)
    title = re.sub(r",?\s*\((?:Band\s*\d+|[\d-]+)\)", "", title)
    title = re.sub(r",?\s*S\.\s*\d+\w*\s*$", "", title).strip(" .,")
    return title.title() if title.isupper() else title


def _last_section(block: str) -> str:
    found = re.findall(r"^%\s*-{3,}\s*(.*?)\s*-*\s*$", block, flags=re.M)
    return found[-1] if found else ""


def _humdrum_piece(collection: Collection, path: Path, rel: str) -> Piece:
    """A Humdrum (Palestrina) movement: title from ``!!!OTL``, mass name from ``!!!OPR``."""
    records: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.startswith("!!!"):
                break
            name, _, value = line[3:].partition(":")
            records.setdefault(name.strip(), value.strip())
    mass = records.get("OPR", path.stem)
    movement = records.get("OTL", path.stem)
    return Piece(
        key=rel,
        collection=collection.key,
        path=rel,
        title=f"{mass}: {movement}",
        group=mass,
        rhythm="mass",
        size=path.stat().st_size,
    )


def _file_piece(collection: Collection, path: Path, rel: str) -> Piece:
    """A MusicXML piece: title and group from the file name."""
    stem = path.stem
    if collection.key == "bach":
        bwv = re.match(r"bwv(\d+)", stem)
        group = f"{int(bwv[1]):04d}" if bwv else stem
        title = f"Chorale BWV {stem[3:]}"
    elif collection.key == "monteverdi":
        book, number = stem.split(".")[1:3]
        group, title = book, f"Madrigal, Book {book} no. {number}"
    elif collection.key == "trecento":
        group = stem
        title = re.sub(r"^PMFC_[\d_a-z]*-?", "", stem).replace("_", " ").replace("-", " ").strip() or stem
    elif collection.key == "quartets":
        parts = Path(rel).with_suffix("").parts
        group = "/".join(parts[:2])
        movement = parts[2].replace("movement", "movement ").replace("_", " ") if len(parts) > 2 else ""
        title = f"{_QUARTET_FACTS[group][0].split()[-1]} {_opus_label(group)}" + (f", {movement}" if movement else "")
    else:
        group, title = stem, stem
    return Piece(key=rel, collection=collection.key, path=rel, title=title, group=group, size=path.stat().st_size)


def full_catalogue(root: Path | None = None) -> dict[str, list[Piece]]:
    """:func:`catalogue` of every collection, keyed by collection key."""
    root = corpus_root() if root is None else root
    return {c.key: catalogue(c, root) for c in COLLECTIONS}


def parse_piece(piece: Piece, root: Path | None = None) -> Score:
    """Parse one piece with music21 (never reading or writing music21's pickle cache).

    Raises:
        Exception: whatever music21 raises for a score it cannot read; callers skip the piece.
    """
    from music21 import converter, stream

    if piece.abc is not None:
        parsed = converter.parseData(piece.abc, format="abc")
    else:
        root = corpus_root() if root is None else root
        parsed = converter.parse(root / piece.path, forceSource=True, storePickle=False)
    if isinstance(parsed, stream.Opus):
        scores = list(parsed.scores)
        if not scores:
            raise ValueError("the file holds no score")
        parsed = scores[0]
    return parsed
