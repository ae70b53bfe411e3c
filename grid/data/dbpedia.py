"""Questions from a DBpedia mapping-based objects dump, the head-to-tail way.

An entity's popularity is the number of triples it takes part in (as subject or
object). Entities, most popular first, are cut into head / torso / tail at one and
two thirds of the total triple mass; a question takes the bin of its subject. For
every relation with a question template, at most K (subject, relation) pairs per bin
are drawn, and a question's answers are the names of all the pair's objects, since
each of them is a correct answer.

The dump (N-Triples or Turtle lines `<s> <p> <o> .`, plain, .bz2 or .gz) is streamed
twice, for popularity and then for the draw, so a multi-GB file is never held in
memory: what is held is one number per entity and the K drawn pairs per relation
and bin. The draw keeps the K pairs with the smallest seeded hash, which does not
depend on the order of the lines.

Question templates are the Head-to-Tail ones shipped in grid/data/resources/ unless the
config names a file. A relation's domain (the "same domain" reason for a shift,
docs/protocol.md §5) is its rdfs:domain in a DBpedia ontology file, else its
rdfs:range, as the authors looked both up online (§7); a relation with neither gets
no domain, and the summary counts such relations.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import heapq
import json
import re
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import unquote, urljoin

from tqdm import tqdm

from grid.data.reading import LoadSummary, RowError, SourceConfig, domain_format, open_text, shorten, text
from grid.data.facts import POPULARITY, FactError, clean_aliases

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

# The Head-to-Tail question templates (facebookresearch/head-to-tail, CC BY-NC 4.0).
SHIPPED_TEMPLATES = resources.files("grid.data") / "resources" / "dbpedia_question_templates.json"

_TRIPLE = re.compile(r"<([^<>\s]+)>\s*<([^<>\s]+)>\s*<([^<>\s]+)>\s*\.")
# One term of a line that is not a plain triple: an IRI, a literal, a blank node or any other word.
_TERM = re.compile(r'<[^<>]*>|"(?:[^"\\]|\\.)*"(?:@[\w-]+|\^\^<[^<>]*>)?|\S+')
_IRI = re.compile(r"<[^<>\s]+>")
_UCHAR = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")  # N-Triples escapes in IRIs
_DISAMBIGUATED = re.compile(r"(.+?)\s*\([^()]*\)")  # "Queen (band)"
PARTS = ("subject", "relation", "object")


def entity_name(uri: str) -> str:
    """An entity's name from its URI: what follows /resource/ (or the last / or #), decoded."""
    name = uri.split("/resource/", 1)[1] if "/resource/" in uri else re.split("[/#]", uri)[-1]
    name = _UCHAR.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), name)
    return unquote(name, errors="strict").replace("_", " ").strip()


def answers(name: str) -> list[str]:
    """Answers for a name: without its parenthesized disambiguation first, then as it is."""
    m = _DISAMBIGUATED.fullmatch(name)
    return [m.group(1), name] if m else [name]


def _json_map(path: Path | Traversable, what: str) -> dict[str, str]:
    """A JSON file mapping relation URIs (with or without <>) to text."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise FactError(str(path), e.lineno, what, f"malformed JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise FactError(str(path), "-", what, f"must be a JSON object: relation URI -> text, not {type(data).__name__}")
    mapping = {k.strip().strip("<>"): v for k, v in data.items()}
    for relation, value in mapping.items():
        if not isinstance(value, str):
            raise FactError(str(path), "-", relation, f"expected text, got {type(value).__name__} {shorten(value)}")
    return mapping


def question_templates(path: Path | None) -> dict[str, str]:
    """Relation URI -> question template from `path`, or the shipped ones when it is None."""
    source = SHIPPED_TEMPLATES if path is None else Path(path)
    templates = _json_map(source, "templates")
    for relation, template in templates.items():
        if template.count("_") != 1:
            raise FactError(str(source), "-", relation, f"a template needs one '_' for the subject: {template!r}")
    return templates


RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
_DOMAIN, _RANGE = RDFS + "domain", RDFS + "range"


def _owl_statements(path: Path) -> Iterator[tuple[str, str, str]]:
    """(property, rdfs:domain or rdfs:range, class) from an RDF/XML ontology such as dbpedia.owl."""
    try:
        with open_text(path) as f:
            root = ET.parse(f).getroot()
    except ET.ParseError as e:
        raise FactError(str(path), e.position[0], "(xml)", f"malformed RDF/XML: {e}") from None
    base = root.get("{http://www.w3.org/XML/1998/namespace}base", "")
    for node in root.iter():
        about = node.get(f"{{{RDF}}}about")
        if about is None:
            continue
        for child in node:
            predicate = child.tag.lstrip("{").replace("}", "", 1)
            if predicate not in (_DOMAIN, _RANGE):
                continue
            # <rdfs:domain rdf:resource="..."/>, or the class written out inside; a union of
            # classes (a blank node) names no single class and is passed over.
            target = child.get(f"{{{RDF}}}resource") or next(
                (c.get(f"{{{RDF}}}about") for c in child if c.get(f"{{{RDF}}}about")), None)
            if target:
                yield urljoin(base, about), predicate, urljoin(base, target)


_NT_STATEMENT = re.compile(r"(<[^<>]*>|_:\S+)\s+<([^<>]*)>\s+(.+?)\s*\.")


def _nt_statements(path: Path) -> Iterator[tuple[str, str, str]]:
    """(property, rdfs:domain or rdfs:range, class) from an N-Triples ontology."""
    with open_text(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            m = _NT_STATEMENT.fullmatch(line)
            if not m:
                raise FactError(str(path), n, "(line)", f"not an N-Triples statement: {shorten(line)}")
            s, p, o = m.groups()
            if p in (_DOMAIN, _RANGE) and s.startswith("<") and _IRI.fullmatch(o):
                yield s[1:-1], p, o[1:-1]  # blank nodes (unions of classes) name no single class


def relation_domains(path: Path) -> dict[str, str]:
    """Relation URI -> domain from a JSON map or from an ontology's rdfs:domain, else rdfs:range.

    A property with several domains (or ranges) takes the first in the file.
    """
    path = Path(path)
    fmt = domain_format(path)
    if fmt == "json":
        return _json_map(path, "domains")
    found: dict[str, dict[str, str]] = {_DOMAIN: {}, _RANGE: {}}
    for prop, predicate, cls in (_owl_statements if fmt == "owl" else _nt_statements)(path):
        found[predicate].setdefault(prop, cls)
    if not found[_DOMAIN] and not found[_RANGE]:
        raise FactError(str(path), "-", "domains", "no rdfs:domain or rdfs:range statement: not an ontology")
    return {**found[_RANGE], **found[_DOMAIN]}


def _bad_part(line: str) -> tuple[str, str]:
    """The part of a dump line that keeps it from being a triple `<s> <p> <o> .`, and why."""
    if not line.endswith("."):
        return "(line)", f"does not end with ' .': {shorten(line)}"
    terms = _TERM.findall(line[:-1])
    for part, term in zip(PARTS, terms):
        if not _IRI.fullmatch(term):
            return part, f"not an IRI <...>: {shorten(term)}"
    if len(terms) < len(PARTS):
        return PARTS[len(terms)], f"missing: {shorten(line)}"
    return "(line)", f"{len(terms)} terms, a triple has 3: {shorten(line)}"


def _triples(path: Path, desc: str) -> Iterator[tuple[int, tuple[str, str, str] | FactError]]:
    """(line number, (s, p, o) or what is wrong with the line) for every triple line."""
    decompress = {".bz2": bz2.BZ2File, ".gz": lambda f: gzip.GzipFile(fileobj=f)}.get(path.suffix.lower())
    with open(path, "rb") as raw, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=desc) as bar:
        with (decompress(raw) if decompress else raw) as stream:
            for n, line in enumerate(stream, 1):
                if n % 100_000 == 0:
                    bar.update(raw.tell() - bar.n)  # bytes of the (compressed) file consumed
                line = line.decode("utf-8", "surrogateescape").strip()
                if not line or line.startswith("#"):
                    continue
                m = _TRIPLE.fullmatch(line)
                if not m:
                    yield n, FactError(str(path), n, *_bad_part(line))
                    continue
                if not line.isascii():  # cheap: most dump lines are percent-encoded ASCII
                    try:
                        for part, value in zip(PARTS, m.groups(), strict=True):
                            text(value, part)  # raises on bytes that are not UTF-8
                    except RowError as bad:
                        yield n, FactError(str(path), n, bad.field, bad.reason)
                        continue
                yield n, m.groups()
            bar.update(raw.tell() - bar.n)


def _bins(popularity: dict[str, int]) -> dict[str, int]:
    """Entity -> 0 (head), 1 (torso), 2 (tail) by the triple mass of the more popular entities.

    Overwrites the counts in place: on a full dump this dict is the one big thing held.
    """
    total, mass = sum(popularity.values()), 0
    for entity, count in sorted(popularity.items(), key=lambda kv: (-kv[1], kv[0])):
        popularity[entity] = min(2, 3 * mass // total)
        mass += count
    return popularity


def _rank(seed: int, s: str, p: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}\n{s}\n{p}".encode(), digest_size=8).digest(), "big")


def load_dbpedia(cfg: SourceConfig, summary: LoadSummary) -> list[dict]:
    """Facts (fact-table rows) drawn from the dump at `cfg.path` as `cfg.dbpedia` says."""
    path, db = Path(cfg.path), cfg.dbpedia
    templates = question_templates(db.templates)
    domains = relation_domains(db.domains) if db.domains else {}

    popularity: dict[str, int] = {}
    triples = 0
    for _, triple in _triples(path, "dbpedia 1/2: popularity"):
        summary.rows_read += 1
        if isinstance(triple, FactError):
            summary.reject(triple)
            continue
        triples += 1
        s, _, o = triple
        popularity[s] = popularity.get(s, 0) + 1
        popularity[o] = popularity.get(o, 0) + 1
    entities, bins = len(popularity), _bins(popularity)

    heaps: dict[tuple[str, int], list] = {}  # (relation, bin) -> the K smallest (-rank, pair)
    drawn: dict[tuple[str, str], list[tuple[int, str]]] = {}  # drawn (s, p) -> [(line, o)]
    templated = 0
    for n, triple in _triples(path, "dbpedia 2/2: questions"):
        if isinstance(triple, FactError) or triple[1] not in templates:
            continue  # bad lines were reported in pass 1; untemplated ones are counted below
        templated += 1
        s, p, o = triple
        if (s, p) in drawn:
            drawn[s, p].append((n, o))
            continue
        rank, heap = _rank(db.seed, s, p), heaps.setdefault((p, bins[s]), [])
        if len(heap) < db.per_relation:
            heapq.heappush(heap, (-rank, (s, p)))
        elif rank < -heap[0][0]:
            del drawn[heapq.heapreplace(heap, (-rank, (s, p)))[1]]
        else:
            continue  # ranks only shrink in the heap, so a pair turned away stays out
        drawn[s, p] = [(n, o)]

    facts = []
    for (p, b), heap in sorted(heaps.items()):
        for _, (s, _p) in sorted(heap, reverse=True):
            try:
                facts.append(_fact(path, s, p, drawn[s, p], templates[p], domains.get(p), POPULARITY[b]))
            except FactError as err:
                summary.reject(err)
    relations = {p for p, _ in heaps}
    summary.notes = {
        "triples": triples,
        "entities": entities,
        "triples_without_template": triples - templated,
        "relations_drawn": len(relations),
        "questions_per_bin": {pop: sum(f["popularity"] == pop for f in facts) for pop in POPULARITY},
        "per_relation": db.per_relation,
        "seed": db.seed,
        "templates": str(db.templates or SHIPPED_TEMPLATES),
        "domains": str(db.domains) if db.domains else None,
    }
    if db.domains:
        without = sorted(relations - domains.keys())
        summary.notes["relations_without_domain"] = len(without)
        summary.notes["relations_without_domain_list"] = without
    return facts


def _fact(path: Path, s: str, p: str, objects: list[tuple[int, str]], template: str,
          domain: str | None, popularity: str) -> dict:
    def name(uri: str, part: str, line: int) -> str:
        try:
            decoded = entity_name(uri)
        except UnicodeDecodeError:
            raise FactError(str(path), line, part, f"percent-encoding that is not UTF-8 in <{uri}>") from None
        if not decoded:
            raise FactError(str(path), line, part, f"no name in <{uri}>")
        return decoded

    subject = name(s, "subject", objects[0][0])
    names = [name(o, "object", line) for line, o in objects]
    return {
        "fact_id": "dbp-" + hashlib.blake2b(f"{s}\n{p}".encode(), digest_size=8).hexdigest(),
        "question": template.replace("_", subject),
        "aliases": clean_aliases(a for n in names for a in answers(n)),
        "subject": subject,
        "relation": p,
        "object": names[0],
        "domain": domain,
        "popularity": popularity,
        "paraphrases": [],
    }
