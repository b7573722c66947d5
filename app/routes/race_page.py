"""The /race page and its HTMX fragments."""
from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
