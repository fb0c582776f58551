"""Reports over finished protocol cells (their tables, metrics logs or checkpoints): the score
components of attention models and the attention ablation. Each writes one Markdown table whose
"Produced by" line is the ``attn-ocgan report ...`` command that re-draws it."""
