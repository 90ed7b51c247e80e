"""What every API list's filters share."""

from django import forms


class NoEmptyValuesForm(forms.Form):
    """django-filter ignores `?currency=`, as an HTML form leaves a field blank; an API
    client that sends an empty value made a mistake, and hears so."""

    def clean(self):
        for name in self.fields:
            if "" in self.data.getlist(name):
                self.add_error(name, "May not be empty.")
        return super().clean()
