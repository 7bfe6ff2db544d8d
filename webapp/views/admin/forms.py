from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from webapp.services.identity.users import MIN_PASSWORD_LENGTH


class NewUserForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=150)])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH)])
    is_admin = BooleanField("Admin")


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH)])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice("user", "user"), SelectChoice("admin", "admin")])


class GrantForm(FlaskForm):
    account_id = SelectField("Account", coerce=int, choices=[])
    can_read = BooleanField("Read", default=True)
    can_send = BooleanField("Send")
