"""The model's lifecycle: training, evaluation, registration and the @champion."""
