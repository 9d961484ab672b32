#!/usr/bin/env python3
"""Checks each line of OUTPUTS (one generated text per line, JSON-encoded as a string) with
Python's json and jsonschema (formats checked) against SCHEMA; exit 1 naming the first
failures. Independent of xent's grammar code: it is how test-json-schema judges outputs."""
import json
import sys

import jsonschema


def main():
    schema_path, outputs_path = sys.argv[1], sys.argv[2]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    bad = 0
    n = 0
    with open(outputs_path, encoding="utf-8") as f:
        for line in f:
            n += 1
            text = json.loads(line)
            try:
                value = json.loads(text)
            except ValueError as e:
                print(f"output {n}: not JSON ({e}): {text!r}")
                bad += 1
                continue
            errors = list(validator.iter_errors(value))
            if errors:
                print(f"output {n}: {errors[0].message} at {list(errors[0].absolute_path)}: {text!r}")
                bad += 1
    print(f"{n} outputs, {bad} invalid")
    return 1 if bad or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
