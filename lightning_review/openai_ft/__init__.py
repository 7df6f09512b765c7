"""The hosted path (the seed's v2.5): the same pairs as OpenAI chat fine-tuning data, validated, costed, submitted."""
