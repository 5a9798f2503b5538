"""The served style as a contextual bandit: exploration within guardrails, a versioned reward per
session, and off-policy estimates of a candidate's reward from the logged decisions."""
