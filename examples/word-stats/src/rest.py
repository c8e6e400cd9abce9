"""REST surface: PAR serves it at /agents/word-stats/... (mount(app) gets a FastAPI app)."""

from src.main import handler


def mount(app):
    @app.get("/api/stats")
    async def stats(text: str = "", top: int = 3):
        """GET /agents/word-stats/api/stats?text=...&top=N: the same summary as invoke."""
        return handler({"text": text, "top": top})
