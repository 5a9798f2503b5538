"""Model analysis: feature importance, SHAP explanations, correlations and version comparison."""
