"""The three scenarios, UI-free and unit-testable: validate, call a model, register the output."""
