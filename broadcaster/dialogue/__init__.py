"""Turn-taking: the conversation (who speaks next), its turn policy, and the live side that wires chat, replies and speech together."""
