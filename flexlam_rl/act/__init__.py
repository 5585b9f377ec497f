"""Acting in latent space: the Gymnasium wrappers, latent behaviour cloning, and the baselines every return is read
against."""
