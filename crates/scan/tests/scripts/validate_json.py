#!/usr/bin/env python3
"""Validate a JSON document against a JSON Schema, offline.

Usage: validate_json.py SCHEMA DOCUMENT

The tests of the `scan` crate call this script to check that the output of
`bonded scan --format cyclonedx|spdx|sarif` conforms to the official schema of
the format (see ../fixtures/schemas/SOURCES.md).

Behaviour:
  * The JSON Schema draft is the one SCHEMA declares in `$schema`
    (draft-04 for SARIF 2.1.0, draft-07 for CycloneDX 1.6, 2019-09 for
    SPDX 2.3); a schema without a known `$schema` is a usage error.
  * `$ref`s to other schema files are resolved only from the directory that
    holds SCHEMA: by file name (the last path segment of the reference) or by
    the `$id`/`id` a sibling file declares. Nothing is ever fetched from the
    network; an unresolvable reference is reported as an error.
  * `format` is asserted for every format the declared draft defines
    (date-time, uri, iri-reference, idn-email, ...). jsonschema silently skips
    a format whose checker library is missing, so the script stops with exit
    code 2 unless all of them are importable; they come with
    `pip install "jsonschema[format-nongpl]==4.26.0"` (no GPL dependency).
    Formats the draft does not define (e.g. `uri-reference` under the
    draft-04 SARIF schema) are ignored, as the draft requires.
  * A DOCUMENT that is not strict JSON (syntax error, NaN/Infinity,
    duplicate object keys) is invalid.

Exit codes: 0 valid; 1 invalid (every error, at most 50, printed on stderr
as "<JSON path>: <message>"); 2 usage, I/O or setup error.
"""

import importlib.util
import json
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

MAX_ERRORS = 50
MAX_MESSAGE_CHARS = 400
MINIMUM_JSONSCHEMA = (4, 18)
INSTALL_HINT = 'pip install "jsonschema[format-nongpl]==4.26.0"'
# The modules behind jsonschema's format checkers (its `format-nongpl` extra).
FORMAT_CHECKER_MODULES = (
    "fqdn",
    "idna",
    "isoduration",
    "jsonpointer",
    "rfc3339_validator",
    "rfc3986_validator",
    "rfc3987_syntax",
    "uri_template",
    "webcolors",
)


class UsageError(Exception):
    """A problem with the arguments, the files or the environment (exit 2)."""


class InvalidDocument(Exception):
    """DOCUMENT is not strict JSON (exit 1)."""


def import_validation_libraries():
    """Import jsonschema and referencing, or explain what to install."""
    try:
        import jsonschema
        import referencing
        import referencing.exceptions
        import referencing.jsonschema
    except ImportError as error:
        raise UsageError(f"{error}; install the validator with: {INSTALL_HINT}") from error
    installed = metadata.version("jsonschema")
    numbers = tuple(int(part) for part in installed.split(".")[:2] if part.isdigit())
    if numbers < MINIMUM_JSONSCHEMA:
        raise UsageError(f"jsonschema {installed} is too old (need >= 4.18): {INSTALL_HINT}")
    missing = [name for name in FORMAT_CHECKER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(
            f"format checkers unavailable (missing {', '.join(missing)}); install: {INSTALL_HINT}"
        )
    return jsonschema, referencing


def reject_constant(name):
    raise ValueError(f"{name} is not a JSON value")


def object_without_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate object key {key!r}")
        seen[key] = value
    return seen


def parse_strict_json(text):
    return json.loads(
        text,
        object_pairs_hook=object_without_duplicates,
        parse_constant=reject_constant,
    )


def read_json(path, role):
    """Read and parse a file; a schema that fails is a usage error, a document is invalid."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {role} {path}: {error}") from error
    try:
        return parse_strict_json(text)
    except ValueError as error:
        if role == "document":
            raise InvalidDocument(f"$: document is not valid JSON: {error}") from error
        raise UsageError(f"{role} {path} is not valid JSON: {error}") from error


def declared_id(schema):
    """The base URI a schema declares (`$id`, or `id` before draft 6), without fragment."""
    if not isinstance(schema, dict):
        return None
    for keyword in ("$id", "id"):
        value = schema.get(keyword)
        if isinstance(value, str) and value:
            return urldefrag(value).url
    return None


class SiblingSchemas:
    """The schema files next to SCHEMA, found by file name or by declared id."""

    def __init__(self, directory):
        self.by_name = {path.name: path for path in sorted(directory.glob("*.json"))}
        self._by_id = None
        self._contents = {}

    def contents(self, path):
        if path not in self._contents:
            self._contents[path] = read_json(path, "referenced schema")
        return self._contents[path]

    def by_id(self):
        if self._by_id is None:
            self._by_id = {}
            for path in self.by_name.values():
                try:
                    identifier = declared_id(self.contents(path))
                except UsageError:
                    continue
                if identifier:
                    self._by_id.setdefault(identifier, path)
        return self._by_id

    def find(self, uri):
        base = urldefrag(uri).url
        name = urlsplit(base).path.rsplit("/", 1)[-1]
        if name in self.by_name:
            return self.by_name[name]
        return self.by_id().get(base)


def build_validator(schema_path):
    jsonschema, referencing = import_validation_libraries()
    schema = read_json(schema_path, "schema")
    if not isinstance(schema, dict):
        raise UsageError(f"schema {schema_path} is not a JSON object")
    validator_class = jsonschema.validators.validator_for(schema, default=None)
    if validator_class is None:
        raise UsageError(
            f"schema {schema_path} declares no known JSON Schema draft "
            f"($schema = {schema.get('$schema')!r})"
        )
    try:
        validator_class.check_schema(schema)
    except jsonschema.exceptions.SchemaError as error:
        raise UsageError(f"schema {schema_path} is not a valid schema: {error.message}") from error

    siblings = SiblingSchemas(Path(schema_path).resolve().parent)
    default_specification = referencing.jsonschema.specification_with(
        schema["$schema"], default=referencing.jsonschema.DRAFT7
    )

    def retrieve_local(uri):
        path = siblings.find(uri)
        if path is None:
            raise referencing.exceptions.NoSuchResource(ref=uri)
        return referencing.Resource.from_contents(
            siblings.contents(path), default_specification=default_specification
        )

    registry = referencing.Registry(retrieve=retrieve_local)
    return validator_class(schema, registry=registry, format_checker=validator_class.FORMAT_CHECKER)


def shorten(text):
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[:MAX_MESSAGE_CHARS] + f"... ({len(text) - MAX_MESSAGE_CHARS} more characters)"


def describe(error):
    """One line per error: where in the document, what failed, and which schema rule."""
    schema_path = "/".join(str(part) for part in error.schema_path)
    line = f"{error.json_path}: {shorten(error.message)} [schema: {schema_path}]"
    if error.context:
        from jsonschema.exceptions import best_match

        cause = best_match(error.context)
        line += f"\n    closest alternative: {cause.json_path}: {shorten(cause.message)}"
    return line


def validate(schema_path, document_path):
    validator = build_validator(schema_path)
    document = read_json(document_path, "document")
    errors = sorted(
        validator.iter_errors(document),
        key=lambda error: ([str(part) for part in error.absolute_path], error.message),
    )
    return [describe(error) for error in errors]


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return EXIT_USAGE
    try:
        problems = validate(argv[1], argv[2])
    except UsageError as error:
        print(f"validate_json.py: {error}", file=sys.stderr)
        return EXIT_USAGE
    except InvalidDocument as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    except Exception as error:  # noqa: BLE001 - e.g. an unresolvable $ref
        print(
            f"validate_json.py: validation could not complete: {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not problems:
        return EXIT_VALID
    for line in problems[:MAX_ERRORS]:
        print(line, file=sys.stderr)
    if len(problems) > MAX_ERRORS:
        print(f"... and {len(problems) - MAX_ERRORS} more errors", file=sys.stderr)
    print(f"{argv[2]}: {len(problems)} schema violation(s)", file=sys.stderr)
    return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main(sys.argv))
