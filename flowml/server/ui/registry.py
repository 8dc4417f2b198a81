"""(filled in by the page's author)"""

from fastapi import APIRouter

router = APIRouter()
