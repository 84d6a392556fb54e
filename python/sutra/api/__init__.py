# SPDX-License-Identifier: MIT
"""The HTTP API of a Sutra store (FastAPI): see app.py."""
