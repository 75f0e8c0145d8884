from .cli import app

app(prog_name="mt-repro")
