"""Articles: content (model, parse / serialise), rendering, chunking, lifecycle, versions, feedback, post-incident
reviews, the KCS template, and the store (with its outbox, the one feed of the search index)."""
