"""Local fakes of outside services that speak each service's wire protocol, so the real client
libraries (python-telegram-bot, tweepy, twilio, smtplib) are exercised end to end."""
