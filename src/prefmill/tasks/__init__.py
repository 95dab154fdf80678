"""Pure work on one shard: prompts, synthesis, evaluation, instantiation (DESIGN §4)."""
