"""Local stand-ins for cloud APIs, served on 127.0.0.1 to the real client libraries."""
