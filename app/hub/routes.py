"""Hugging Face Hub compatible REST routes (hf-protocol.md): reads and writes."""

from fastapi import APIRouter

from app.hub import commit_write, people, read, write

router = APIRouter()
router.include_router(write.router)
router.include_router(commit_write.router)
router.include_router(read.router)
router.include_router(people.router)
