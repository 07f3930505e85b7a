"""Where each kind of content lives in the blob store: the one place that spells out keys.

`git/<sha1>`        a zlib-compressed git object (loose object format), by its SHA-1
`lfs/<sha256>`      a large file uploaded through LFS (or rebuilt for git), by its SHA-256
`xet/xorbs/<hash>`  a Xet xorb (compressed chunks), by its Merkle hash
`xet/files/<hash>`  a Xet file's recipe (the xorb slices it is made of), by the file hash

Readers never build keys: they open a file's content through `app.repos.content`.
"""

from __future__ import annotations

GIT_PREFIX = "git/"
LFS_PREFIX = "lfs/"
XORB_PREFIX = "xet/xorbs/"
RECIPE_PREFIX = "xet/files/"


def git_object_key(sha: str) -> str:
    return f"{GIT_PREFIX}{sha}"


def lfs_key(oid: str) -> str:
    return f"{LFS_PREFIX}{oid}"


def xorb_key(xorb_hex: str) -> str:
    return f"{XORB_PREFIX}{xorb_hex}"


def recipe_key(file_hex: str) -> str:
    return f"{RECIPE_PREFIX}{file_hex}"
