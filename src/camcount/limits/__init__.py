"""Plans, limits, quotas, usage metering and rate limits."""
