"""Signing requests, batches and signatures (tenant schema). Built in later issues."""
