#!/usr/bin/env python3
"""Check livepatch --json output against schema/livepatch.schema.json.

usage: validate.py [--schema FILE] [--quiet] [JSON_FILE|-]...

Each argument is a file holding one JSON object ('-' or no argument: standard
input). Prints one line per input, "NAME: ok" or "NAME: invalid", followed by the
reasons, each with the path of the member at fault. Exit status: 0 when every
input is valid, 1 when one is not, 2 when the input is not JSON, the schema is
broken or the jsonschema module (Debian: python3-jsonschema) is missing.
"""
import argparse
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    sys.stderr.write("validate.py: the jsonschema module is missing "
                     "(apt-get install python3-jsonschema)\n")
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))


def branch_of(doc):
    """The oneOf branch an object was meant to be, to explain why it fails."""
    if not isinstance(doc, dict):
        return None
    if "symbols" in doc:
        return "symbols"
    if "changed" in doc or "bytes_compared" in doc:
        return "list"
    if set(doc) == {"error"}:
        return "error_only"
    if "where" in doc:
        return "where_report"
    return "report"


def reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def where(err):
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    return path or "(top level)"


def check(validator, schema, doc):
    """Return the list of reasons why doc is invalid (empty when it is valid)."""
    if validator.is_valid(doc):
        return []
    name = branch_of(doc)
    if name is None:
        return [f"(top level): {doc!r} is not an object"]
    # Validate against the branch alone: oneOf's own message says nothing useful.
    sub = dict(schema)
    sub.pop("oneOf", None)
    sub["$ref"] = f"#/$defs/{name}"
    cls = jsonschema.validators.validator_for(schema)
    errs = sorted(cls(sub).iter_errors(doc), key=lambda e: list(e.absolute_path))
    out = [f"as {name}: {where(e)}: {e.message}" for e in errs]
    return out or [f"as {name}: valid alone, but matches more than one branch of oneOf"]


def main():
    ap = argparse.ArgumentParser(description="validate livepatch --json output")
    ap.add_argument("--schema", default=os.path.join(HERE, "livepatch.schema.json"))
    ap.add_argument("--quiet", action="store_true", help="print the reasons only")
    ap.add_argument("files", nargs="*", default=["-"])
    args = ap.parse_args()

    try:
        with open(args.schema, encoding="utf-8") as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
    except (OSError, ValueError, jsonschema.exceptions.SchemaError) as e:
        sys.stderr.write(f"validate.py: bad schema {args.schema}: {e}\n")
        return 2
    validator = cls(schema)

    rc = 0
    for name in args.files:
        try:
            if name == "-":
                text = sys.stdin.read()
                name = "stdin"
            else:
                with open(name, encoding="utf-8") as f:
                    text = f.read()
            doc = json.loads(text, parse_constant=reject_constant)
        except (OSError, ValueError) as e:
            print(f"{name}: not JSON: {e}")
            return 2
        reasons = check(validator, schema, doc)
        if not args.quiet:
            print(f"{name}: {'invalid' if reasons else 'ok'}")
        for r in reasons:
            print(f"  {r}")
        if reasons:
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
