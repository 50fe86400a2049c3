"""Smart customer service: knowledge base, hybrid retrieval, grounded answers, handoff."""
