"""Review generation: a local Llama (base + adapter, or a merged directory) or an OpenAI-compatible API, writing one
JSONL format that resumes and that the evaluator reads."""
