"""Trading: the kill switch, risk guards, entry/stop/size rules, the trailing ladder."""
