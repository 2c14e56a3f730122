"""Custom actions of the assistant, served by `rasa run actions --actions bot.actions`."""
