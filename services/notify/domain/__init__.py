"""Pure rules of the notify service: signing, retries, target URL policy, webhook payloads."""
