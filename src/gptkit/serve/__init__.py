"""`gptkit serve`: an OpenAI-compatible HTTP server with continuous batching, and a chat page.

protocol.py (request bodies, settings, error shape), service.py (checkpoint + BatchScheduler thread + text
layer), chat.py (chat template), app.py (the FastAPI routes), page.html (the page at /). Needs the `serve`
extra: pip install 'gptkit[serve]'.
"""
