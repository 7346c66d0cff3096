#!/usr/bin/env python3
"""Extracts the Batch API's schemas from the official OpenAI OpenAPI specification into
Tests/schema/openai-batch.schema.json, the way ../shared/spec/ was made: only the named schemas
and what they reference, `#/components/schemas/X` rewritten to `#/$defs/X`.

usage: extract_batch_schema.py OPENAPI_REPO_GIT_DIR > openai-batch.schema.json
(OPENAPI_REPO_GIT_DIR: a clone of github.com/openai/openai-openapi.)

From openapi.json at f85dbe2 (info.version 2.3.0, the commit ../shared/spec/ names):
CreateFileRequest, OpenAIFile, CreateBatchRequest, Batch, ListBatchesResponse. The per-line
shapes of the input and output files (BatchRequestInput, BatchRequestOutput) are no longer in
that file; they are taken from openapi.yaml at 498c71d (2025-04-29, also 2.3.0), the last commit
that has them, with OpenAPI 3.0's `nullable: true` turned into a JSON Schema null type.
"""
import json
import subprocess
import sys

import yaml

CURRENT, CURRENT_NAMES = "f85dbe2", ["CreateFileRequest", "OpenAIFile", "CreateBatchRequest", "Batch", "ListBatchesResponse"]
LINES, LINE_NAMES = "498c71d", ["BatchRequestInput", "BatchRequestOutput"]


def show(repo, commit, path):
    return subprocess.run(["git", "--git-dir", repo, "show", f"{commit}:{path}"], check=True, capture_output=True).stdout


def refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v.rsplit("/", 1)[-1]
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def rewrite(node):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref":
                out[k] = "#/$defs/" + v.rsplit("/", 1)[-1]
            elif k in ("x-oaiMeta", "example"):
                continue
            else:
                out[k] = rewrite(v)
        if out.pop("nullable", False):
            t = out.get("type")
            out["type"] = [t, "null"] if isinstance(t, str) else (t or []) + ["null"]
        return out
    if isinstance(node, list):
        return [rewrite(v) for v in node]
    return node


def collect(schemas, names):
    found, todo = {}, list(names)
    while todo:
        n = todo.pop()
        if n in found:
            continue
        found[n] = schemas[n]
        todo.extend(refs(schemas[n]))
    return {k: rewrite(v) for k, v in sorted(found.items())}


def main():
    repo = sys.argv[1]
    current = json.loads(show(repo, CURRENT, "openapi.json"))["components"]["schemas"]
    lines = yaml.safe_load(show(repo, LINES, "openapi.yaml"))["components"]["schemas"]
    defs = collect(current, CURRENT_NAMES)
    defs.update(collect(lines, LINE_NAMES))
    print(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": "Extracted from the OpenAI OpenAPI specification (openai/openai-openapi), MIT License, "
        "Copyright (c) OpenAI, by Tests/schema/extract_batch_schema.py: CreateFileRequest, OpenAIFile, "
        "CreateBatchRequest, Batch, ListBatchesResponse from openapi.json at f85dbe2 (info.version 2.3.0); "
        "BatchRequestInput and BatchRequestOutput (the input and output files' lines) from openapi.yaml at "
        "498c71d (2.3.0, the last commit with them), nullable turned into a null type. Validate a document "
        "against {\"$ref\": \"#/$defs/<Name>\"} (jsonschema Draft202012Validator).",
        "$defs": defs,
    }, indent=1, sort_keys=False))


if __name__ == "__main__":
    main()
