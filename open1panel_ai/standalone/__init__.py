"""The smallest real host of the open1panel contract, so ``open1panel-ai serve`` runs the AI
module on a machine with no other panel. It uses only the public hooks of :mod:`hookspecs.panel`,
exactly as a third-party host would."""
