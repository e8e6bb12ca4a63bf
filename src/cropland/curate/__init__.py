"""Curation: automatic quality scores, a decision store and a web review app."""
