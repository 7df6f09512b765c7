"""generate against an OpenAI-protocol server, run as the command line runs it: shared by the endpoint tests."""

from tests.conftest import run_cli, write_jsonl
from tests.openai_server import API_KEY


def four_papers(directory):
    """A papers file of four short papers in ``directory``."""
    return write_jsonl(directory / "papers.jsonl", [{"id": f"p{i}", "paper": f"Paper {i} studies graph diffusion."}
                                                    for i in range(4)])


def generate(papers, out, *flags, env=None):
    """``generate`` of ``papers`` into ``out`` (16 new tokens, whole papers), with the test server's key."""
    return run_cli("generate", f"--papers={papers}", f"--output_file={out}", "--max_new_tokens=16",
                   "--max_context=0", *flags, cwd=out.parent, env={"OPENAI_API_KEY": API_KEY, **(env or {})})


def last_line(proc) -> str:
    """The one-line refusal of a run that exited 1 without a traceback."""
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.stderr.strip().splitlines()[-1]
